package buildiumsim

import (
	"errors"
	"fmt"
	"time"
)

// Seed is what the simulator serves: one Buildium account (its API key)
// with its rental properties, tenants and leases.
type Seed struct {
	ClientID, ClientSecret string
	Rentals                []Rental
	Tenants                []Tenant
	Leases                 []Lease
}

// Rental is a rental property.
type Rental struct {
	ID    int32
	Name  string
	Units int32
}

// Tenant is a person as Buildium lists them. Updated is when the record
// last changed (what lastupdatedfrom filters on; zero: the simulator's
// start).
type Tenant struct {
	ID                  int32
	FirstName, LastName string
	Email               string // "" for none: omitted from answers
	AlternateEmail      string
	Phone               string
	Updated             time.Time
}

// Lease is a lease of one unit: its status (Active, Past, Future), its
// tenants with their status on it (Current, Future, MovedOut) and the
// move-outs scheduled or done.
type Lease struct {
	ID          int32
	PropertyID  int32
	UnitID      int32
	UnitNumber  string
	From, To    string // YYYY-MM-DD
	Status      string // Active, Past, Future
	TermType    string // Standard, MonthToMonth; "" is Standard
	Eviction    bool
	Tenants     []LeaseTenant
	MoveOuts    []MoveOut
	Updated     time.Time
	LeaseType   string // Fixed, AtWill, ...; "" is Fixed
	Description string // not served: what the demo row shows
}

// LeaseTenant is a tenant's place on a lease.
type LeaseTenant struct {
	TenantID int32
	Status   string // Current, Future, MovedOut
	MoveIn   string // YYYY-MM-DD
}

// MoveOut is a tenant's move-out from a lease: scheduled (a notice) or
// done.
type MoveOut struct {
	TenantID int32
	Date     string // YYYY-MM-DD
	Notice   string // YYYY-MM-DD, optional
}

var (
	leaseStatuses  = map[string]bool{"Active": true, "Past": true, "Future": true}
	tenantStatuses = map[string]bool{"Current": true, "Future": true, "MovedOut": true}
)

// Validate reports a seed the simulator cannot serve faithfully: missing
// credentials, duplicate ids, unknown references, statuses and dates
// outside the spec.
func (s Seed) Validate() error {
	if s.ClientID == "" || s.ClientSecret == "" {
		return errors.New("seed needs a client id and a client secret")
	}
	rentals := map[int32]bool{}
	for _, r := range s.Rentals {
		if rentals[r.ID] || r.ID <= 0 {
			return fmt.Errorf("rental id %d is not positive or used twice", r.ID)
		}
		rentals[r.ID] = true
	}
	tenants := map[int32]bool{}
	for _, t := range s.Tenants {
		if tenants[t.ID] || t.ID <= 0 {
			return fmt.Errorf("tenant id %d is not positive or used twice", t.ID)
		}
		tenants[t.ID] = true
	}
	leases := map[int32]bool{}
	for _, l := range s.Leases {
		if leases[l.ID] || l.ID <= 0 {
			return fmt.Errorf("lease id %d is not positive or used twice", l.ID)
		}
		leases[l.ID] = true
		if !rentals[l.PropertyID] {
			return fmt.Errorf("lease %d: unknown rental %d", l.ID, l.PropertyID)
		}
		if !leaseStatuses[l.Status] {
			return fmt.Errorf("lease %d: status %q is not Active, Past or Future", l.ID, l.Status)
		}
		for _, d := range []string{l.From, l.To} {
			if err := checkDate(d); err != nil {
				return fmt.Errorf("lease %d: %w", l.ID, err)
			}
		}
		for _, lt := range l.Tenants {
			if !tenants[lt.TenantID] || !tenantStatuses[lt.Status] {
				return fmt.Errorf("lease %d: tenant %d unknown or status %q not Current, Future or MovedOut", l.ID, lt.TenantID, lt.Status)
			}
			if err := checkDate(lt.MoveIn); err != nil {
				return fmt.Errorf("lease %d: %w", l.ID, err)
			}
		}
		for _, m := range l.MoveOuts {
			if !tenants[m.TenantID] || m.Date == "" {
				return fmt.Errorf("lease %d: move-out of unknown tenant %d or without a date", l.ID, m.TenantID)
			}
			for _, d := range []string{m.Date, m.Notice} {
				if err := checkDate(d); err != nil {
					return fmt.Errorf("lease %d: %w", l.ID, err)
				}
			}
		}
	}
	return nil
}

func checkDate(d string) error {
	if d == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, d); err != nil {
		return fmt.Errorf("date %q is not YYYY-MM-DD", d)
	}
	return nil
}

// The demo account's credentials and ids.
const (
	DemoClientID        = "demo-buildium-client-id"
	DemoClientSecret    = "demo-buildium-client-secret"
	DemoHarborViewID    = 5001 // the rental property of cloudkey's harbor-view
	DemoFoundryLoftsID  = 5002 // of foundry-lofts
	demoSeedUpdatedYear = 2026
)

// DemoSeed is Buildium's side of PRODUCT.md's demo: the residents of
// harbor-view and foundry-lofts, with the cases reconciliation must
// handle (the Description of each lease says which).
func DemoSeed() Seed {
	at := func(month, day int) time.Time {
		return time.Date(demoSeedUpdatedYear, time.Month(month), day, 12, 0, 0, 0, time.UTC)
	}
	return Seed{
		ClientID: DemoClientID, ClientSecret: DemoClientSecret,
		Rentals: []Rental{
			{ID: DemoHarborViewID, Name: "Harbor View", Units: 40},
			{ID: DemoFoundryLoftsID, Name: "Foundry Lofts", Units: 12},
		},
		Tenants: []Tenant{
			{ID: 9001, FirstName: "Alice", LastName: "Anders", Email: "alice@example.com", Phone: "617-555-0101", Updated: at(6, 1)},
			{ID: 9002, FirstName: "Bob", LastName: "Baker", Email: "Bob@Example.com", Updated: at(6, 1)},
			{ID: 9003, FirstName: "Carol", LastName: "Chen", Email: "carol@example.com", Updated: at(1, 10)},
			{ID: 9004, FirstName: "Erin", LastName: "Evans", Email: "erin@example.com", AlternateEmail: "erin.evans@work.example", Updated: at(3, 1)},
			{ID: 9005, FirstName: "Gina", LastName: "Ito", Email: "gi.na@example.com", Updated: at(2, 1)},
			{ID: 9006, FirstName: "Ken", LastName: "Park", Email: "parks@example.com", Updated: at(2, 1)},
			{ID: 9007, FirstName: "Lee", LastName: "Park", Email: "parks@example.com", Updated: at(2, 1)},
			{ID: 9008, FirstName: "Frank", LastName: "Foster", Email: "frank@example.com", Updated: at(4, 1)},
			{ID: 9009, FirstName: "Dana", LastName: "Diaz", Email: "dana@example.com", Updated: at(11, 20)},
			{ID: 9010, FirstName: "Max", LastName: "Anders", Updated: at(6, 1)},
			{ID: 9011, FirstName: "Hank", LastName: "Hill", Email: "hank@example.com", Updated: at(5, 1)},
		},
		Leases: []Lease{
			{ID: 7001, PropertyID: DemoHarborViewID, UnitID: 101, UnitNumber: "101", From: "2025-06-01", To: "2027-05-31", Status: "Active", Updated: at(6, 1),
				Tenants:     []LeaseTenant{{9001, "Current", "2025-06-01"}, {9010, "Current", "2025-06-01"}},
				Description: "alice, current; Max, an occupant without an email"},
			{ID: 7002, PropertyID: DemoHarborViewID, UnitID: 102, UnitNumber: "102", From: "2024-06-15", To: "2026-06-14", Status: "Active", TermType: "MonthToMonth", Updated: at(6, 15),
				Tenants:     []LeaseTenant{{9002, "Current", "2024-06-15"}},
				Description: "bob, month to month; his email differs from the access system's by case only"},
			{ID: 7003, PropertyID: DemoHarborViewID, UnitID: 103, UnitNumber: "103", From: "2023-01-01", To: "2026-10-31", Status: "Past", Updated: at(11, 2),
				Tenants:     []LeaseTenant{{9003, "MovedOut", "2023-01-01"}},
				MoveOuts:    []MoveOut{{9003, "2026-10-31", "2026-09-30"}},
				Description: "carol, moved out"},
			{ID: 7004, PropertyID: DemoHarborViewID, UnitID: 104, UnitNumber: "104", From: "2024-03-01", To: "2027-02-28", Status: "Active", Updated: at(10, 15),
				Tenants:     []LeaseTenant{{9004, "Current", "2024-03-01"}},
				MoveOuts:    []MoveOut{{9004, "2026-11-30", "2026-10-15"}},
				Description: "erin, on notice and past her move-out date: the move-out is not processed"},
			{ID: 7005, PropertyID: DemoHarborViewID, UnitID: 105, UnitNumber: "105", From: "2025-02-01", To: "2027-01-31", Status: "Active", Updated: at(2, 1),
				Tenants:     []LeaseTenant{{9005, "Current", "2025-02-01"}},
				Description: "gina, whose email differs from the access system's by a dot"},
			{ID: 7006, PropertyID: DemoHarborViewID, UnitID: 201, UnitNumber: "201", From: "2025-02-01", To: "2027-01-31", Status: "Active", Updated: at(2, 1),
				Tenants:     []LeaseTenant{{9006, "Current", "2025-02-01"}, {9007, "Current", "2025-02-01"}},
				Description: "Ken and Lee Park, two people sharing one email"},
			{ID: 7007, PropertyID: DemoHarborViewID, UnitID: 202, UnitNumber: "202", From: "2027-01-01", To: "2027-12-31", Status: "Future", Updated: at(11, 20),
				Tenants:     []LeaseTenant{{9009, "Future", "2027-01-01"}},
				Description: "dana, moving in next month"},
			{ID: 7008, PropertyID: DemoHarborViewID, UnitID: 301, UnitNumber: "301", From: "2025-04-01", To: "2027-03-31", Status: "Active", Updated: at(4, 1),
				Tenants:     []LeaseTenant{{9008, "Current", "2025-04-01"}},
				Description: "frank, current"},
			{ID: 7101, PropertyID: DemoFoundryLoftsID, UnitID: 1001, UnitNumber: "1A", From: "2025-05-01", To: "2027-04-30", Status: "Active", Updated: at(5, 1),
				Tenants:     []LeaseTenant{{9011, "Current", "2025-05-01"}},
				Description: "hank, current"},
			{ID: 7102, PropertyID: DemoFoundryLoftsID, UnitID: 1002, UnitNumber: "2B", From: "2025-04-01", To: "2027-03-31", Status: "Active", Updated: at(4, 1),
				Tenants:     []LeaseTenant{{9008, "Current", "2025-04-01"}},
				Description: "frank, who also rents a loft"},
		},
	}
}

// GenerateSeed is an account with one rental property of n single-tenant
// leases for load tests: tenant i is resident%06d@example.com; every 20th
// is on notice, every 100th is future and the 50th of each hundred has
// moved out. It is
// deterministic.
func GenerateSeed(propertyID int32, n int) Seed {
	s := Seed{
		ClientID: DemoClientID, ClientSecret: DemoClientSecret,
		Rentals: []Rental{{ID: propertyID, Name: fmt.Sprintf("Generated %d", propertyID), Units: int32(n)}},
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := int32(100_000 + i)
		upd := base.Add(time.Duration(i) * time.Minute)
		s.Tenants = append(s.Tenants, Tenant{ID: id, FirstName: "Resident", LastName: fmt.Sprint(i), Email: fmt.Sprintf("resident%06d@example.com", i), Updated: upd})
		l := Lease{ID: int32(1_000_000 + i), PropertyID: propertyID, UnitID: int32(10_000 + i), UnitNumber: fmt.Sprint(i + 1),
			From: "2025-01-01", To: "2026-12-31", Status: "Active", Updated: upd,
			Tenants: []LeaseTenant{{id, "Current", "2025-01-01"}}}
		switch {
		case i%100 == 99:
			l.Status, l.From, l.To = "Future", "2027-01-01", "2027-12-31"
			l.Tenants[0] = LeaseTenant{id, "Future", "2027-01-01"}
		case i%50 == 49:
			l.Status = "Past"
			l.Tenants[0].Status = "MovedOut"
			l.MoveOuts = []MoveOut{{id, "2026-06-30", "2026-05-31"}}
		case i%20 == 19:
			l.MoveOuts = []MoveOut{{id, "2026-12-31", "2026-11-30"}}
		}
		s.Leases = append(s.Leases, l)
	}
	return s
}
