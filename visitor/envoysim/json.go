package envoysim

import (
	"slices"
	"time"
)

// timeFormat is how Envoy writes times in its API and webhooks.
const timeFormat = "2006-01-02T15:04:05.000Z"

func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }

// nullable is "" as JSON null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type ident struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type rel struct {
	Data *ident `json:"data"`
}

func relTo(typ, id string) rel {
	if id == "" {
		return rel{}
	}
	return rel{Data: &ident{ID: id, Type: typ}}
}

type userDataItem struct {
	Field string  `json:"field"`
	Value *string `json:"value"`
}

// userDataList is the events' user-data: [{field, value}], by field.
func userDataList(m map[string]string) []userDataItem {
	out := make([]userDataItem, 0, len(m))
	for k, v := range m {
		out = append(out, userDataItem{Field: k, Value: nullable(v)})
	}
	slices.SortFunc(out, func(a, b userDataItem) int {
		switch {
		case a.Field < b.Field:
			return -1
		case a.Field > b.Field:
			return 1
		}
		return 0
	})
	return out
}

// inviteModel is the REST API's InviteModel.
type inviteModel struct {
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	Attributes    inviteAttrs    `json:"attributes"`
	Relationships map[string]rel `json:"relationships"`
}

type inviteAttrs struct {
	Email                 *string            `json:"email,omitempty"`
	ExpectedArrivalTime   string             `json:"expected-arrival-time"`
	ExpectedDepartureTime *string            `json:"expected-departure-time,omitempty"`
	FullName              string             `json:"full-name"`
	PrivateNotes          *string            `json:"private-notes,omitempty"`
	UserData              map[string]*string `json:"user-data"`
	NotifyVisitor         bool               `json:"notify-visitor"`
	Arrived               bool               `json:"arrived"`
	Phone                 *string            `json:"phone,omitempty"`
	CreatedAt             string             `json:"created-at"`
	UpdatedAt             string             `json:"updated-at"`
}

func inviteResource(inv *Invite) inviteModel {
	ud := map[string]*string{}
	for k, v := range inv.UserData {
		ud[k] = nullable(v)
	}
	m := inviteModel{
		ID: inv.ID, Type: "invites",
		Attributes: inviteAttrs{
			Email: nullable(inv.Email), ExpectedArrivalTime: stamp(inv.ExpectedArrival), FullName: inv.FullName,
			PrivateNotes: nullable(inv.PrivateNotes), UserData: ud, NotifyVisitor: inv.NotifyVisitor,
			Arrived: inv.EntryID != "", Phone: nullable(inv.Phone),
			CreatedAt: stamp(inv.Created), UpdatedAt: stamp(inv.Created),
		},
		Relationships: map[string]rel{"location": relTo("locations", inv.LocationID), "flow": relTo("flows", inv.FlowID)},
	}
	if !inv.ExpectedDeparture.IsZero() {
		m.Attributes.ExpectedDepartureTime = nullable(stamp(inv.ExpectedDeparture))
	}
	return m
}

type locationModel struct {
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	Attributes    locationAttrs  `json:"attributes"`
	Relationships map[string]any `json:"relationships"`
}

type locationAttrs struct {
	Name     string  `json:"name"`
	Address  string  `json:"address"`
	City     *string `json:"city,omitempty"`
	Zip      *string `json:"zip,omitempty"`
	Timezone *string `json:"timezone,omitempty"`
	Disabled bool    `json:"disabled"`
}

type flowModel struct {
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	Attributes    flowAttrs      `json:"attributes"`
	Relationships map[string]rel `json:"relationships"`
}

type flowAttrs struct {
	Name            string `json:"name"`
	EmployeeCentric bool   `json:"employee-centric"`
	Enabled         bool   `json:"enabled"`
}

// eventBody is what Envoy POSTs to a webhook.
type eventBody struct {
	Meta    eventMeta `json:"meta"`
	Payload any       `json:"payload"`
}

type eventMeta struct {
	Event     string         `json:"event"`
	PluginID  string         `json:"plugin_id"`
	InstallID string         `json:"install_id"`
	Config    map[string]any `json:"config"`
	Job       metaJob        `json:"job"`
	Location  metaLocation   `json:"location"`
	Company   metaCompany    `json:"company"`
	Auth      *struct{}      `json:"auth"` // always null: cloudkey uses its own token
}

type metaJob struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Identifier string `json:"identifier"`
}

type metaLocation struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Attributes metaLocationAttrs `json:"attributes"`
}

type metaLocationAttrs struct {
	Name                string   `json:"name"`
	CompanyNameOverride *string  `json:"company-name-override"`
	Timezone            string   `json:"timezone"`
	Locale              *string  `json:"locale"`
	Address             string   `json:"address"`
	AddressLineOne      *string  `json:"address-line-one"`
	AddressLineTwo      *string  `json:"address-line-two"`
	City                *string  `json:"city"`
	State               *string  `json:"state"`
	Country             *string  `json:"country"`
	Zip                 *string  `json:"zip"`
	Longitude           *float64 `json:"longitude"`
	Latitude            *float64 `json:"latitude"`
	CreatedAt           string   `json:"created-at"`
}

type metaCompany struct {
	ID         string           `json:"id"`
	Type       string           `json:"type"`
	Attributes metaCompanyAttrs `json:"attributes"`
}

type metaCompanyAttrs struct {
	Name      string `json:"name"`
	Active    bool   `json:"active"`
	CreatedAt string `json:"created-at"`
}

type invitePayload struct {
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	Attributes    invitePayAttrs `json:"attributes"`
	Relationships map[string]rel `json:"relationships"`
}

type invitePayAttrs struct {
	EmployeeScreeningFlow   bool           `json:"employee-screening-flow"`
	FullName                string         `json:"full-name"`
	Email                   *string        `json:"email"`
	InviterName             *string        `json:"inviter-name"`
	InviterEmail            *string        `json:"inviter-email"`
	ExpectedArrivalTime     string         `json:"expected-arrival-time"`
	PrivateNotes            *string        `json:"private-notes"`
	Arrived                 bool           `json:"arrived"`
	BeenHereBefore          bool           `json:"been-here-before"`
	FlowName                string         `json:"flow-name"`
	FlowID                  string         `json:"flow-id"`
	UserData                []userDataItem `json:"user-data"`
	SecretToken             string         `json:"secret-token"`
	EditToken               string         `json:"edit-token"`
	PhotoURL                *string        `json:"photo-url"`
	QRCode                  *string        `json:"qr-code"`
	QRCodeSentAt            *string        `json:"qr-code-sent-at"`
	PreregistrationComplete bool           `json:"preregistration-complete"`
	ReminderSentAt          *string        `json:"reminder-sent-at"`
}

type entryPayload struct {
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	Attributes    entryPayAttrs  `json:"attributes"`
	Relationships map[string]rel `json:"relationships"`
}

type thumbnails struct {
	Large    *string `json:"large"`
	Original *string `json:"original"`
	Small    *string `json:"small"`
}

type entryPayAttrs struct {
	FullName              string         `json:"full-name"`
	PhoneNumber           *string        `json:"phone-number,omitempty"`
	Email                 *string        `json:"email"`
	EmployeeScreeningFlow bool           `json:"employee-screening-flow"`
	Host                  *string        `json:"host"`
	HostEmail             *string        `json:"host-email"`
	PrivateNotes          *string        `json:"private-notes"`
	SignedInAt            string         `json:"signed-in-at"`
	SignedOutAt           *string        `json:"signed-out-at,omitempty"`
	Thumbnails            thumbnails     `json:"thumbnails"`
	FlowName              string         `json:"flow-name"`
	UserData              []userDataItem `json:"user-data"`
}

var jobNames = map[string]string{
	"invite_created": "Invite created", "invite_removed": "Invite removed",
	"entry_sign_in": "Entry sign in", "entry_sign_out": "Entry sign out",
	EventBlacklistReview: "Entry blacklist review", EventBlacklistDeny: "Entry blacklist deny",
}

// meta is an event's meta for loc; s.mu is held.
func (s *Sim) meta(event string, loc *Location) eventMeta {
	created := "2024-02-01T10:00:00.000Z"
	return eventMeta{
		Event: event, PluginID: s.seed.PluginID, InstallID: s.seed.InstallID, Config: map[string]any{},
		Job: metaJob{ID: "job-" + randomHex(6), Name: jobNames[event], Identifier: event},
		Location: metaLocation{ID: loc.ID, Type: "locations", Attributes: metaLocationAttrs{
			Name: loc.Name, Timezone: loc.TimeZone, Address: loc.Address, City: nullable(loc.City),
			Country: nullable(loc.Country), Zip: nullable(loc.Zip), CreatedAt: created,
		}},
		Company: metaCompany{ID: s.seed.Company.ID, Type: "companies", Attributes: metaCompanyAttrs{
			Name: s.seed.Company.Name, Active: true, CreatedAt: created,
		}},
	}
}

func flowName(loc *Location, id string) string {
	for _, f := range loc.Flows {
		if f.ID == id {
			return f.Name
		}
	}
	return ""
}

// inviteEvent is the body of an invite event; s.mu is held.
func (s *Sim) inviteEvent(event string, inv *Invite) []byte {
	loc := s.locationsByID[inv.LocationID]
	p := invitePayload{
		ID: inv.ID, Type: "invites",
		Attributes: invitePayAttrs{
			FullName: inv.FullName, Email: nullable(inv.Email), ExpectedArrivalTime: stamp(inv.ExpectedArrival),
			PrivateNotes: nullable(inv.PrivateNotes), Arrived: inv.EntryID != "", FlowName: flowName(loc, inv.FlowID),
			FlowID: inv.FlowID, UserData: userDataList(inv.UserData), SecretToken: inv.SecretToken, EditToken: inv.EditTok,
		},
		Relationships: map[string]rel{"location": relTo("locations", inv.LocationID), "flow": relTo("flows", inv.FlowID)},
	}
	if inv.EntryID != "" {
		p.Relationships["entry"] = relTo("entries", inv.EntryID)
	}
	return marshal(eventBody{Meta: s.meta(event, loc), Payload: p})
}

// entryEvent is the body of an entry event; s.mu is held.
func (s *Sim) entryEvent(event string, e *Entry) []byte {
	loc := s.locationsByID[e.LocationID]
	p := entryPayload{
		ID: e.ID, Type: "entries",
		Attributes: entryPayAttrs{
			FullName: e.FullName, PhoneNumber: nullable(e.Phone), Email: nullable(e.Email), Host: nullable(e.Host),
			HostEmail: nullable(e.HostEmail), SignedInAt: stamp(e.SignedIn), FlowName: flowName(loc, e.FlowID),
			UserData: userDataList(e.UserData),
		},
		Relationships: map[string]rel{"location": relTo("locations", e.LocationID), "flow": relTo("flows", e.FlowID)},
	}
	if !e.SignedOut.IsZero() {
		p.Attributes.SignedOutAt = nullable(stamp(e.SignedOut))
	}
	if e.InviteID != "" {
		p.Relationships["invite"] = relTo("invites", e.InviteID)
	}
	return marshal(eventBody{Meta: s.meta(event, loc), Payload: p})
}
