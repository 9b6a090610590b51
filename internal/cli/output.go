package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// Output formats of -o, taken by every list and get command.
const (
	formatTable = "table" // columns for people, times as "3m ago" or a local date
	formatJSON  = "json"  // the API's JSON, times in RFC 3339
	formatYAML  = "yaml"  // the same document as JSON, written as YAML
)

var outputFormats = []string{formatTable, formatJSON, formatYAML}

const outputFlagUsage = "output format: table, json or yaml (JSON and YAML carry RFC 3339 times)"

// checkOutput validates an -o value; "" is the default, table.
func checkOutput(format string) (string, error) {
	switch format {
	case "":
		return formatTable, nil
	case formatTable, formatJSON, formatYAML:
		return format, nil
	}
	return "", withCode(ExitUsage, fmt.Errorf("--output (-o): %q is not allowed; use %s", format, strings.Join(outputFormats, ", ")))
}

// registerOutput adds -o to a command that does not talk to a server (token list).
func registerOutput(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", formatTable, outputFlagUsage)
}

// printOut writes v as JSON or YAML, or calls human for the table form. It is the one place
// list and get commands print what they fetched.
func printOut(w io.Writer, format string, v any, human func(w io.Writer) error) error {
	format, err := checkOutput(format)
	if err != nil {
		return err
	}
	switch format {
	case formatJSON:
		return printJSON(w, v)
	case formatYAML:
		return printYAML(w, v)
	}
	return human(w)
}

// table is a tab-aligned table: a header row, then one row per item.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, cols ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(cols...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fields prints "name: value" lines aligned, for a get command's table form.
func fields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], v)
	}
	return tw.Flush()
}

// humanTime is a time for people: "12s ago", "5m ago", "3h ago", else the local date and time.
// The zero time is "-".
func humanTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return t.Local().Format("2006-01-02 15:04:05")
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.Local().Format("2006-01-02 15:04")
}

// humanTimePtr is humanTime of an optional time; nil is "-" (never "<nil>").
func humanTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return humanTime(*t)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printJSONLine(w io.Writer, v any) { json.NewEncoder(w).Encode(v) }

// printYAML writes v's JSON document as YAML: the keys, their order and the values (RFC 3339
// time strings included) are exactly those of -o json. YAML 1.2 reads JSON, so the JSON is
// parsed into a YAML node tree and written back in block style.
func printYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("convert to yaml: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("write yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// blockStyle drops the flow and quoting styles the JSON text gave the nodes; the encoder then
// quotes only the strings that would otherwise read as another type (a time, a number, true).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
