package buildium

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/roster"
)

// The parts of Buildium's messages the pull reads.

type leaseMessage struct {
	ID                  int32                `json:"Id"`
	PropertyID          int32                `json:"PropertyId"`
	UnitNumber          string               `json:"UnitNumber"`
	LeaseFromDate       string               `json:"LeaseFromDate"`
	LeaseToDate         string               `json:"LeaseToDate"`
	LeaseStatus         string               `json:"LeaseStatus"`
	IsEvictionPending   bool                 `json:"IsEvictionPending"`
	TermType            string               `json:"TermType"`
	CurrentTenants      []tenantMessage      `json:"CurrentTenants"`
	LastUpdatedDateTime string               `json:"LastUpdatedDateTime"`
	MoveOutData         []moveOutMessage     `json:"MoveOutData"`
	Tenants             []leaseTenantMessage `json:"Tenants"`
}

type leaseTenantMessage struct {
	ID         int32  `json:"Id"`
	Status     string `json:"Status"`
	MoveInDate string `json:"MoveInDate"`
}

type moveOutMessage struct {
	TenantID        int32  `json:"TenantId"`
	MoveOutDate     string `json:"MoveOutDate"`
	NoticeGivenDate string `json:"NoticeGivenDate"`
}

type tenantMessage struct {
	ID             int32  `json:"Id"`
	FirstName      string `json:"FirstName"`
	LastName       string `json:"LastName"`
	Email          string `json:"Email"`
	AlternateEmail string `json:"AlternateEmail"`
	PhoneNumbers   []struct {
		Number string `json:"Number"`
		Type   string `json:"Type"`
	} `json:"PhoneNumbers"`
	Leases []leaseMessage `json:"Leases"`
}

type rentalMessage struct {
	ID int32 `json:"Id"`
}

type apiErrorResponse struct {
	UserMessage string `json:"UserMessage"`
	ErrorCode   string `json:"ErrorCode"`
	Errors      []struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	} `json:"Errors"`
}

// person maps one tenant on one lease to the neutral record
// (PMS_APIS.md §2): Buildium has no Notice status, so an Active lease
// with a move-out for a Current tenant is notice; a MovedOut tenant or a
// Past lease is past; a Future lease or tenant is future.
func person(l leaseMessage, lt leaseTenantMessage, t tenantMessage) (roster.Person, *roster.Issue) {
	p := roster.Person{
		Source: roster.SourceBuildium, PropertyID: strconv.Itoa(int(l.PropertyID)), Unit: l.UnitNumber,
		HouseholdID: strconv.Itoa(int(l.ID)), PersonID: strconv.Itoa(int(t.ID)),
		FirstName: t.FirstName, LastName: t.LastName,
		Eviction: l.IsEvictionPending, MonthToMonth: l.TermType == "MonthToMonth",
		SourceStatus: "lease " + l.LeaseStatus + ", tenant " + lt.Status,
	}
	// A stamp Buildium writes some other way is provenance only: not a
	// reason to drop the row.
	if ts, err := time.Parse(time.RFC3339, l.LastUpdatedDateTime); err == nil {
		p.SourceUpdatedAt = ts.UTC()
	}
	issue := func(kind roster.IssueKind, reason string) *roster.Issue {
		return &roster.Issue{Kind: kind, Skipped: true, Key: p.Key(),
			Reason: fmt.Sprintf("Buildium tenant %d (%s, unit %s, lease %d) %s", t.ID, p.Name(), l.UnitNumber, l.ID, reason)}
	}
	email, other := strings.TrimSpace(t.Email), strings.TrimSpace(t.AlternateEmail)
	if email == "" {
		email, other = other, ""
	}
	if email == "" {
		return p, issue(roster.IssueNoEmail, "has no email: add one in Buildium, or the person cannot be matched to a door user")
	}
	if err := p.SetEmail(email); err != nil {
		return p, issue(roster.IssueBadRow, fmt.Sprintf("has the email %q, which is not an address", email))
	}
	if other != "" && !strings.EqualFold(other, email) {
		p.OtherEmails = []string{other}
	}
	for _, ph := range t.PhoneNumbers {
		if p.Phone == "" || ph.Type == "Cell" {
			p.Phone = ph.Number
		}
	}
	var bad []string
	date := func(name, s string) roster.Date {
		d, err := roster.ParseDate(s)
		if err != nil {
			bad = append(bad, name+": "+err.Error())
		}
		return d
	}
	p.LeaseStart = date("LeaseFromDate", l.LeaseFromDate)
	p.LeaseEnd = date("LeaseToDate", l.LeaseToDate)
	p.MoveIn = date("MoveInDate", lt.MoveInDate)
	var moveOut *moveOutMessage
	for i := range l.MoveOutData {
		if l.MoveOutData[i].TenantID == t.ID {
			moveOut = &l.MoveOutData[i]
		}
	}
	if moveOut != nil {
		p.MoveOut = date("MoveOutDate", moveOut.MoveOutDate)
		p.NoticeDate = date("NoticeGivenDate", moveOut.NoticeGivenDate)
	}
	if len(bad) > 0 {
		return p, issue(roster.IssueBadRow, "has malformed dates: "+strings.Join(bad, "; "))
	}
	switch {
	case lt.Status == "MovedOut" || l.LeaseStatus == "Past":
		p.Status, p.MoveOutIsActual = roster.StatusPast, !p.MoveOut.IsZero()
	case lt.Status == "Future" || l.LeaseStatus == "Future":
		p.Status = roster.StatusFuture
	case moveOut != nil:
		p.Status = roster.StatusNotice
	case l.LeaseStatus == "Active" && lt.Status == "Current":
		p.Status = roster.StatusCurrent
	default:
		p.Status = roster.StatusUnknown
	}
	return p, nil
}
