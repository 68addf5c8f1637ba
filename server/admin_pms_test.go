package server

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
)

// GetProperty's pms block: the settings and the last pull, a flag for the
// secret, and nothing unset before the first pull.
func TestPropertyPBShowsPMS(t *testing.T) {
	at := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		pms  *PMSStatus
		want string
	}{
		{"none", nil, `{"propertyId":"hv"}`},
		{"before the first pull", &PMSStatus{System: "buildium", URL: "https://api.buildium.com", PropertyIDs: []int32{5001}, Every: time.Hour, SecretSet: true},
			`{"propertyId":"hv","pms":{"system":"buildium","url":"https://api.buildium.com","propertyIds":[5001],"every":"3600s","secretSet":true}}`},
		{"after a failed pull", &PMSStatus{System: "buildium", URL: "u", PropertyIDs: []int32{1, 2}, Every: 5 * time.Minute, SecretSet: true,
			LastPullAt: at, LastPullResult: "failed", LastPullError: "pull: buildium refused the API key (401)", NextPullAt: at.Add(5 * time.Minute)},
			`{"propertyId":"hv","pms":{"system":"buildium","url":"u","propertyIds":[1,2],"every":"300s","secretSet":true,"lastPullAt":"2026-12-02T14:00:00Z","lastPullResult":"failed","lastPullError":"pull: buildium refused the API key (401)","nextPullAt":"2026-12-02T14:05:00Z"}}`},
		{"after a pull that saved a version", &PMSStatus{System: "buildium", URL: "u", PropertyIDs: []int32{1}, Every: time.Hour, SecretSet: true,
			LastPullAt: at, LastPullResult: "ok", LastPullVer: 7},
			`{"propertyId":"hv","pms":{"system":"buildium","url":"u","propertyIds":[1],"every":"3600s","secretSet":true,"lastPullAt":"2026-12-02T14:00:00Z","lastPullResult":"ok","lastPullVersion":7}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := protojson.Marshal(propertyPB(PropertyStatus{ID: "hv", PMS: tt.pms}))
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}
