package tenant

import "context"

// Grant gives org's contact email the visitor-registration tile for
// building. Granting again is not an error. An unknown contact is
// ErrNotFound: contacts come from an import, so a grant for one that is not
// there is a typo or a contact the property manager has not listed yet.
func (s *Store) Grant(ctx context.Context, org, email, building string) error {
	email, building, err := grantArgs(org, email, building)
	if err != nil {
		return err
	}
	return s.cs.Grant(ctx, org, email, building)
}

// Revoke takes building's tile away from org's contact email. Revoking a
// grant the contact does not have is not an error; an unknown contact is
// ErrNotFound.
func (s *Store) Revoke(ctx context.Context, org, email, building string) error {
	email, building, err := grantArgs(org, email, building)
	if err != nil {
		return err
	}
	return s.cs.Revoke(ctx, org, email, building)
}

// Granted reports whether org's contact email has the tile for building.
// It is the tile's check on every request (one SISMEMBER in Redis), and
// false (not an error) for an unknown contact, since removing a contact
// removes its grants.
func (s *Store) Granted(ctx context.Context, org, email, building string) (bool, error) {
	email, building, err := grantArgs(org, email, building)
	if err != nil {
		return false, err
	}
	return s.cs.Granted(ctx, org, email, building)
}

// Grants returns the buildings org's contact email has the tile for,
// sorted; an unknown contact is ErrNotFound.
func (s *Store) Grants(ctx context.Context, org, email string) ([]string, error) {
	email, err := canonical(org, email)
	if err != nil {
		return nil, err
	}
	grants, err := s.cs.Grants(ctx, org, email)
	if err != nil {
		return nil, err
	}
	return sorted(grants), nil
}

func grantArgs(org, email, building string) (string, string, error) {
	email, err := canonical(org, email)
	if err != nil {
		return "", "", err
	}
	building, err = checkBuilding(building)
	if err != nil {
		return "", "", err
	}
	return email, building, nil
}
