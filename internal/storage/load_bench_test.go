package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
)

// BenchmarkLoadCSV streams a generated 200,000-row CSV into a new table and exports it back;
// it reports the heap in use after each side against the CSV's size (the streaming check:
// a load or an export that held the table would show it here).
func BenchmarkLoadCSV(b *testing.B) {
	var csv bytes.Buffer
	csv.WriteString("id,code,amount,city\n")
	for i := 0; i < 200_000; i++ {
		fmt.Fprintf(&csv, "%d,c-%06x,%d.%02d,city%d\n", i, i*7919%(1<<24), i%100000, i%100, i%6)
	}
	data := csv.Bytes()
	ctx := context.Background()
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapInuse) / 1e6
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := newStorage(b)
		b.StartTimer()
		if _, err := s.LoadCSV(ctx, s.DB(), "in.c-b.t", bytes.NewReader(data), LoadOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.LoadCSV(ctx, s.DB(), "in.c-b.t", bytes.NewReader(data), LoadOptions{Incremental: true, PrimaryKey: []string{"id"}}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Export(ctx, "in.c-b.t", io.Discard, ExportOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(heap(), "heap_MB")
		s.Close()
		b.StartTimer()
	}
}
