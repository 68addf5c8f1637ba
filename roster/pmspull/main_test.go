package pmspull

import (
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
