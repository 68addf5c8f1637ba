package buildiumsim

import "time"

// The answers' shapes, Buildium's messages (LeaseMessage, TenantMessage,
// ...). Absent values are omitted: the spec has no nullable field.

type leaseMessage struct {
	ID                          int32                `json:"Id"`
	PropertyID                  int32                `json:"PropertyId"`
	UnitID                      int32                `json:"UnitId"`
	UnitNumber                  string               `json:"UnitNumber,omitempty"`
	LeaseFromDate               string               `json:"LeaseFromDate,omitempty"`
	LeaseToDate                 string               `json:"LeaseToDate,omitempty"`
	LeaseType                   string               `json:"LeaseType"`
	LeaseStatus                 string               `json:"LeaseStatus"`
	IsEvictionPending           bool                 `json:"IsEvictionPending"`
	TermType                    string               `json:"TermType"`
	CurrentTenants              []tenantMessage      `json:"CurrentTenants,omitempty"`
	CurrentNumberOfOccupants    int32                `json:"CurrentNumberOfOccupants"`
	AutomaticallyMoveOutTenants bool                 `json:"AutomaticallyMoveOutTenants"`
	CreatedDateTime             string               `json:"CreatedDateTime"`
	LastUpdatedDateTime         string               `json:"LastUpdatedDateTime"`
	MoveOutData                 []moveOutMessage     `json:"MoveOutData"`
	PaymentDueDay               int32                `json:"PaymentDueDay"`
	Tenants                     []leaseTenantMessage `json:"Tenants"`
}

type leaseTenantMessage struct {
	ID         int32  `json:"Id"`
	Status     string `json:"Status"`
	MoveInDate string `json:"MoveInDate,omitempty"`
}

type moveOutMessage struct {
	TenantID        int32  `json:"TenantId"`
	MoveOutDate     string `json:"MoveOutDate"`
	NoticeGivenDate string `json:"NoticeGivenDate,omitempty"`
}

type phoneMessage struct {
	Number string `json:"Number"`
	Type   string `json:"Type"`
}

type tenantMessage struct {
	ID              int32          `json:"Id"`
	FirstName       string         `json:"FirstName,omitempty"`
	LastName        string         `json:"LastName,omitempty"`
	Email           string         `json:"Email,omitempty"`
	AlternateEmail  string         `json:"AlternateEmail,omitempty"`
	PhoneNumbers    []phoneMessage `json:"PhoneNumbers"`
	CreatedDateTime string         `json:"CreatedDateTime"`
	Leases          []leaseMessage `json:"Leases,omitempty"`
}

type rentalMessage struct {
	ID            int32  `json:"Id"`
	Name          string `json:"Name"`
	NumberUnits   int32  `json:"NumberUnits"`
	IsActive      bool   `json:"IsActive"`
	RentalType    string `json:"RentalType"`
	RentalSubType string `json:"RentalSubType"`
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// leaseMessage renders l; with current, the current tenants' records are
// embedded (CurrentTenants), as GET /v1/leases does. s.mu is held.
func (s *Sim) leaseMessage(l *Lease, current bool) leaseMessage {
	m := leaseMessage{
		ID: l.ID, PropertyID: l.PropertyID, UnitID: l.UnitID, UnitNumber: l.UnitNumber,
		LeaseFromDate: l.From, LeaseToDate: l.To, LeaseType: or(l.LeaseType, "Fixed"), LeaseStatus: l.Status,
		IsEvictionPending: l.Eviction, TermType: or(l.TermType, "Standard"),
		CreatedDateTime: stamp(s.start), LastUpdatedDateTime: stamp(l.Updated),
		MoveOutData: moveOutMessages(l.MoveOuts), PaymentDueDay: 1,
		Tenants: []leaseTenantMessage{},
	}
	for _, lt := range l.Tenants {
		m.Tenants = append(m.Tenants, leaseTenantMessage{ID: lt.TenantID, Status: lt.Status, MoveInDate: lt.MoveIn})
		if lt.Status == "Current" {
			m.CurrentNumberOfOccupants++
			if current {
				m.CurrentTenants = append(m.CurrentTenants, s.tenantMessage(s.tenants[lt.TenantID], nil))
			}
		}
	}
	return m
}

// tenantMessage renders t with its leases (without their tenants'
// records). s.mu is held.
func (s *Sim) tenantMessage(t *Tenant, leases []*Lease) tenantMessage {
	m := tenantMessage{
		ID: t.ID, FirstName: t.FirstName, LastName: t.LastName, Email: t.Email, AlternateEmail: t.AlternateEmail,
		PhoneNumbers: []phoneMessage{}, CreatedDateTime: stamp(s.start),
	}
	if t.Phone != "" {
		m.PhoneNumbers = append(m.PhoneNumbers, phoneMessage{Number: t.Phone, Type: "Cell"})
	}
	for _, l := range leases {
		m.Leases = append(m.Leases, s.leaseMessage(l, false))
	}
	return m
}

func moveOutMessages(ms []MoveOut) []moveOutMessage {
	out := []moveOutMessage{}
	for _, m := range ms {
		out = append(out, moveOutMessage{TenantID: m.TenantID, MoveOutDate: m.Date, NoticeGivenDate: m.Notice})
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
