package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// TableConfig sets P8's sizes.
type TableConfig struct {
	Rows   int // rows of the generated CSV (default 1,000,000: about 32 MB, 4 columns)
	Rounds int // rounds of each side; each keeps its best (default 3)
}

// DefaultTableConfig is the sizes.
func DefaultTableConfig() TableConfig { return TableConfig{Rows: 1_000_000, Rounds: 3} }

// TableResult holds P8's figures: berth's table loads against the sqlite3 CLI's .import of
// the same file, in the same run.
type TableResult struct {
	Rows                 int
	FileBytes            int64
	Berth, Baseline      time.Duration // a full load into a new table
	Incremental          time.Duration // the same size, with a primary key, half the keys new
	BaselineIncremental  time.Duration // sqlite3 .import of that file
	LoadRatio, IncrRatio float64
	// DBBytes is the project's table database after both loads (checkpointed).
	DBBytes int64
}

// RunTables runs P8: a generated CSV loaded into a new table through the storage package
// (streamed into the table engine, as the API and output mapping do), then a second CSV
// loaded incrementally with a primary key (half its keys new); sqlite3's .import of each
// file into a new table is the baseline. dataDir is a scratch folder.
func RunTables(ctx context.Context, cfg TableConfig, dataDir string, w io.Writer) (TableResult, error) {
	res := TableResult{Rows: cfg.Rows}
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		return res, fmt.Errorf("P8 needs the sqlite3 CLI (Debian package sqlite3; scripts/bench-prereqs.sh): %w", err)
	}
	full := filepath.Join(dataDir, "p8-full.csv")
	incr := filepath.Join(dataDir, "p8-incremental.csv")
	if res.FileBytes, err = writeTableCSV(full, 0, cfg.Rows, 1); err != nil {
		return res, err
	}
	if _, err := writeTableCSV(incr, cfg.Rows/2, cfg.Rows, 2); err != nil {
		return res, err
	}
	fmt.Fprintf(w, "P8: %d rows, %.1f MB; %d round(s) each side\n", cfg.Rows, float64(res.FileBytes)/1e6, cfg.Rounds)
	for i := 0; i < cfg.Rounds; i++ {
		b, inc, size, err := berthLoads(ctx, filepath.Join(dataDir, fmt.Sprintf("p8-berth-%d", i)), full, incr)
		if err != nil {
			return res, err
		}
		s, err := sqliteImport(ctx, sqlite3, filepath.Join(dataDir, fmt.Sprintf("p8-sqlite-%d.db", i)), full)
		if err != nil {
			return res, err
		}
		si, err := sqliteImport(ctx, sqlite3, filepath.Join(dataDir, fmt.Sprintf("p8-sqlite-incr-%d.db", i)), incr)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(w, "P8 round %d: berth load %s, incremental %s; sqlite3 .import %s, %s\n", i+1,
			b.Round(time.Millisecond), inc.Round(time.Millisecond), s.Round(time.Millisecond), si.Round(time.Millisecond))
		res.Berth, res.Incremental, res.DBBytes = best(res.Berth, b), best(res.Incremental, inc), size
		res.Baseline, res.BaselineIncremental = best(res.Baseline, s), best(res.BaselineIncremental, si)
	}
	res.LoadRatio = res.Berth.Seconds() / res.Baseline.Seconds()
	res.IncrRatio = res.Incremental.Seconds() / res.BaselineIncremental.Seconds()
	return res, nil
}

func best(a, b time.Duration) time.Duration {
	if a == 0 || b < a {
		return b
	}
	return a
}

// writeTableCSV writes rows with ids from first: id,code,amount,city (about 32 bytes a row).
func writeTableCSV(path string, first, rows int, seed uint64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 42))
	cities := []string{"Prague", "Brno", "Ostrava", "Plzen", "Liberec", "Olomouc"}
	fmt.Fprintln(bw, "id,code,amount,city")
	for i := 0; i < rows; i++ {
		fmt.Fprintf(bw, "%d,c-%06x,%d.%02d,%s\n", first+i, rng.IntN(1<<24), rng.IntN(100000), rng.IntN(100), cities[rng.IntN(len(cities))])
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), f.Close()
}

// berthLoads times a full load of full into a new table of a fresh storage, then an
// incremental load of incr with the primary key id.
func berthLoads(ctx context.Context, dir, full, incr string) (load, incremental time.Duration, size int64, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "berth.db"))
	if err != nil {
		return 0, 0, 0, err
	}
	defer st.Close()
	sg, err := storage.New(st, filepath.Join(dir, "storage"))
	if err != nil {
		return 0, 0, 0, err
	}
	defer sg.Close()
	timed := func(path string, o storage.LoadOptions) (time.Duration, error) {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		t0 := time.Now()
		if _, err := sg.LoadCSV(ctx, sg.DB(), "in.c-bench.p8", f, o); err != nil {
			return 0, fmt.Errorf("P8 load %s: %w", filepath.Base(path), err)
		}
		return time.Since(t0), nil
	}
	if load, err = timed(full, storage.LoadOptions{}); err != nil {
		return 0, 0, 0, err
	}
	if incremental, err = timed(incr, storage.LoadOptions{Incremental: true, PrimaryKey: []string{"id"}}); err != nil {
		return 0, 0, 0, err
	}
	if err := sg.Close(); err != nil {
		return 0, 0, 0, err
	}
	if fi, err := os.Stat(filepath.Join(dir, "storage", "tables", store.DefaultProject+".duckdb")); err == nil {
		size = fi.Size()
	}
	return load, incremental, size, nil
}

// sqliteImport times the sqlite3 CLI importing a CSV into a new table (its header names the
// columns).
func sqliteImport(ctx context.Context, sqlite3, db, csv string) (time.Duration, error) {
	defer os.Remove(db)
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, sqlite3, db, "-cmd", ".mode csv", ".import "+csv+" t").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("sqlite3 .import: %v: %s", err, out)
	}
	return time.Since(t0), nil
}

// PrintTables prints P8's lines.
func PrintTables(w io.Writer, r TableResult) {
	mbs := func(d time.Duration) float64 { return float64(r.FileBytes) / 1e6 / d.Seconds() }
	fmt.Fprintf(w, "P8 table_load_ratio=%.3f berth_mb_s=%.1f baseline_mb_s=%.1f rows=%d berth_db_mb=%.1f\n",
		r.LoadRatio, mbs(r.Berth), mbs(r.Baseline), r.Rows, float64(r.DBBytes)/1e6)
	fmt.Fprintf(w, "P8 incremental_ratio=%.3f berth_mb_s=%.1f baseline_mb_s=%.1f\n", r.IncrRatio, mbs(r.Incremental), mbs(r.BaselineIncremental))
}
