package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/selftarget"
	"github.com/cloudkey/cloudkey/loadtest"
)

// loadtestCmd measures cloudkey under load (see loadtest.Usage). The
// report goes to stdout; progress lines and logs to stderr.
func loadtestCmd(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	// --cpuprofile, --blockprofile (where goroutines wait: channels,
	// locks, select) and --trace (runtime/trace, for `go tool trace`) are
	// taken out here, not in loadtest.ParseFlags: they watch this
	// process, whatever it runs.
	args, profile := cutFlag(args, "cpuprofile")
	args, blockFile := cutFlag(args, "blockprofile")
	args, traceFile := cutFlag(args, "trace")
	cfg, err := loadtest.ParseFlags(args, os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return fmt.Errorf("loadtest: --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("loadtest: --cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if blockFile != "" {
		f, err := os.Create(blockFile)
		if err != nil {
			return fmt.Errorf("loadtest: --blockprofile: %w", err)
		}
		defer f.Close()
		runtime.SetBlockProfileRate(int((10 * time.Microsecond).Nanoseconds())) // waits of 10 µs and more, sampled
		defer func() {
			if err := pprof.Lookup("block").WriteTo(f, 0); err != nil {
				log.Error("loadtest: --blockprofile", "err", err)
			}
			runtime.SetBlockProfileRate(0)
		}()
	}
	if traceFile != "" {
		f, err := os.Create(traceFile)
		if err != nil {
			return fmt.Errorf("loadtest: --trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("loadtest: --trace: %w", err)
		}
		defer trace.Stop()
	}
	if cfg.ServeNoopUpstream != "" {
		return loadtest.ServeNoopUpstream(ctx, cfg.ServeNoopUpstream, func(url string) {
			fmt.Fprintf(stdout, "serving noop-http's upstream at %s (for --noop-upstream) until interrupted\n", url)
		})
	}
	if cfg.ServeBaseline != "" {
		return loadtest.ServeBaseline(ctx, cfg.ServeBaseline, func(addr string) {
			fmt.Fprintf(stdout, "serving the no-op baseline (cloudkey.loadtest.Baseline/Noop) on %s until interrupted\n", addr)
		})
	}
	if cfg.FromJSON != "" {
		rep, err := loadtest.ReadReport(cfg.FromJSON)
		if err != nil {
			return err
		}
		if cfg.PlotPath != "" {
			if err := rep.WritePlot(cfg.PlotPath); err != nil {
				return err
			}
		}
		return rep.WriteText(stdout)
	}
	// The in-process cloudkey runs with serve's GC setting.
	tuneGC(0)
	// The in-process cloudkey logs only what is worth a look under load.
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.StartTarget = selftarget.Start
	rep, err := loadtest.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	fmt.Fprintln(os.Stderr)
	werr := rep.WriteText(stdout)
	if cfg.JSONPath != "" {
		werr = errors.Join(werr, rep.WriteJSON(cfg.JSONPath))
	}
	if cfg.PlotPath != "" {
		werr = errors.Join(werr, rep.WritePlot(cfg.PlotPath))
	}
	if werr == nil && (cfg.JSONPath != "" || cfg.PlotPath != "") {
		log.Info("loadtest: wrote", "json", cfg.JSONPath, "plot", cfg.PlotPath)
	}
	return errors.Join(err, werr)
}

// cutFlag removes --name=value or --name value (one or two dashes) from
// args and returns the rest and the value.
func cutFlag(args []string, name string) (rest []string, value string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i:]...), value
		}
		trimmed := strings.TrimLeft(a, "-")
		switch {
		case a != trimmed && trimmed == name && i+1 < len(args):
			value = args[i+1]
			i++
		case a != trimmed && strings.HasPrefix(trimmed, name+"="):
			value = strings.TrimPrefix(trimmed, name+"=")
		default:
			rest = append(rest, a)
		}
	}
	return rest, value
}
