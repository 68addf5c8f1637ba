package propertyredis

import (
	"fmt"
	"slices"

	"github.com/cloudkey/cloudkey/internal/property"
)

// envoyRecord is a property's Envoy connection as stored, its client
// secret sealed.
type envoyRecord struct {
	URL       string   `json:"url,omitempty"`
	ClientID  string   `json:"clientId"`
	Locations []string `json:"locations"`
	Secret    string   `json:"secret"` // sealed
}

// envoyAAD binds a sealed Envoy client secret to its property. It differs
// from every connection's aad (a connection name cannot hold "/"), so the
// secret of a connection named "envoy" does not open as this one.
func envoyAAD(propertyID string) []byte {
	return []byte("property-secret/" + propertyID + "/envoy/client-secret")
}

func (s *Store) sealEnvoy(p property.Property) (*envoyRecord, error) {
	if p.Envoy == nil {
		return nil, nil
	}
	sealed, err := s.keys.Seal([]byte(p.Envoy.Secret), envoyAAD(p.ID))
	if err != nil {
		return nil, fmt.Errorf("envoy: seal the client secret: %w", err)
	}
	return &envoyRecord{URL: p.Envoy.URL, ClientID: p.Envoy.ClientID, Locations: slices.Clone(p.Envoy.Locations), Secret: sealed}, nil
}

func (s *Store) openEnvoy(id string, r *envoyRecord) (*property.Envoy, error) {
	if r == nil {
		return nil, nil
	}
	plain, err := s.keys.Open(r.Secret, envoyAAD(id))
	if err != nil {
		return nil, fmt.Errorf("property %s: envoy: open the client secret (is CLOUDKEY_SECRETS_KEY the key it was sealed with?): %w", id, err)
	}
	return &property.Envoy{URL: r.URL, ClientID: r.ClientID, Locations: slices.Clone(r.Locations), Secret: string(plain)}, nil
}

// sameEnvoy compares two Envoy connections as stored (the *_env and
// *_file names ignored, the secrets in clear).
func sameEnvoy(a, b *property.Envoy) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.URL == b.URL && a.ClientID == b.ClientID && a.Secret == b.Secret && slices.Equal(a.Locations, b.Locations)
}
