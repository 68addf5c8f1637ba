package propertyredis

import (
	"fmt"
	"time"

	"github.com/cloudkey/cloudkey/internal/property"
)

// pmsRecord is a property's pms block as stored: the client secret
// sealed, bound to the property and "pms" (pmsAAD).
type pmsRecord struct {
	System      string        `json:"system"`
	URL         string        `json:"url"`
	ClientID    string        `json:"clientId"`
	PropertyIDs []int32       `json:"propertyIds"`
	Every       time.Duration `json:"every"`
	Secret      string        `json:"secret"` // sealed
}

// pmsAAD binds a pms block's sealed secret to its property. It differs
// from every connection's (aad), whatever the connection is named, so a
// sealed secret cannot be moved between a connection and the pms block.
func pmsAAD(propertyID string) []byte { return []byte("property-pms-secret/" + propertyID) }

func (s *Store) sealPMS(propertyID string, p *property.PMS) (*pmsRecord, error) {
	if p == nil {
		return nil, nil
	}
	sealed, err := s.keys.Seal([]byte(p.ClientSecret), pmsAAD(propertyID))
	if err != nil {
		return nil, fmt.Errorf("pms: seal the client secret: %w", err)
	}
	return &pmsRecord{System: p.System, URL: p.URL, ClientID: p.ClientID, PropertyIDs: p.PropertyIDs, Every: p.Every, Secret: sealed}, nil
}

func (s *Store) openPMS(propertyID string, r *pmsRecord) (*property.PMS, error) {
	if r == nil {
		return nil, nil
	}
	plain, err := s.keys.Open(r.Secret, pmsAAD(propertyID))
	if err != nil {
		return nil, fmt.Errorf("property %s: pms: open the client secret (is CLOUDKEY_SECRETS_KEY the key it was sealed with?): %w", propertyID, err)
	}
	return &property.PMS{System: r.System, URL: r.URL, ClientID: r.ClientID, PropertyIDs: r.PropertyIDs, Every: r.Every, ClientSecret: string(plain)}, nil
}
