package roster

// Link ties a roster person to the user of one access-system connection
// whose email equals theirs in canonical form. Only linked users are ever
// suspended or reactivated on the roster's account.
type Link struct {
	PersonKey  string `json:"personKey"`
	Connection string `json:"connection"` // the connection id, e.g. "harbor-view.kisi"
	UserID     string `json:"userId"`     // the access system's user id
	Email      string `json:"email"`      // the access system's, as written
}
