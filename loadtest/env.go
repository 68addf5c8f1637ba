package loadtest

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// Env is the machine and software a run measured on.
type Env struct {
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	// Modules maps the libraries on the measured path to their versions,
	// from the binary's build information.
	Modules map[string]string `json:"modules"`
}

// reportedModules are the libraries whose versions change the figures.
var reportedModules = []string{
	"google.golang.org/grpc",
	"google.golang.org/protobuf",
	"github.com/grpc-ecosystem/grpc-gateway/v2",
	"github.com/redis/go-redis/v9",
	"github.com/golang-jwt/jwt/v5",
	"github.com/HdrHistogram/hdrhistogram-go",
}

func currentEnv() Env {
	e := Env{
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel: cpuModel(), Modules: map[string]string{},
	}
	bi, ok := debug.ReadBuildInfo()
	for _, m := range reportedModules {
		e.Modules[m] = "unknown"
	}
	if !ok {
		return e
	}
	for _, d := range bi.Deps {
		if _, want := e.Modules[d.Path]; !want {
			continue
		}
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Path + " " + d.Replace.Version + " (replacement)"
		}
		e.Modules[d.Path] = v
	}
	return e
}

// cpuModel reads the first "model name" of /proc/cpuinfo (Linux); empty
// elsewhere.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
