package pgconfig

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestTimeoutsAreAppliedUnlessTheDSNSetsThem: connecting is bounded by 10 s
// and statements by the sink's statement timeout, unless the DSN says
// otherwise.
func TestTimeoutsAreAppliedUnlessTheDSNSetsThem(t *testing.T) {
	cfg, _ := pgx.ParseConfig("postgres://u@127.0.0.1:5432/db")
	ApplyTimeouts(cfg, time.Hour)
	if cfg.ConnectTimeout != DefaultConnectTimeout || cfg.RuntimeParams["statement_timeout"] != "3600000" {
		t.Fatalf("defaults: connect %v, statement %q", cfg.ConnectTimeout, cfg.RuntimeParams["statement_timeout"])
	}
	cfg, _ = pgx.ParseConfig("postgres://u@127.0.0.1:5432/db?connect_timeout=3&statement_timeout=5000")
	ApplyTimeouts(cfg, time.Hour)
	if cfg.ConnectTimeout != 3*time.Second || cfg.RuntimeParams["statement_timeout"] != "5000" {
		t.Fatalf("the DSN's own: connect %v, statement %q", cfg.ConnectTimeout, cfg.RuntimeParams["statement_timeout"])
	}
}
