package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/job"
)

// client talks to a berth server's API.
type client struct {
	base  string
	token string
	http  *http.Client
	from  target // where the server and token came from, for error messages
}

// clientFlags are the flags of commands that talk to a server.
type clientFlags struct {
	server string
	token  string
	output string // table | json | yaml
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.server, "server", "", "berth server URL (default: env BERTH_SERVER, else the current context of berth login, else "+defaultServer+")")
	cmd.PersistentFlags().StringVar(&f.token, "token", "", "API token (default: env BERTH_TOKEN, else the current context's, else the admin token file in --data-dir, if readable)")
	cmd.PersistentFlags().StringVarP(&f.output, "output", "o", formatTable, outputFlagUsage)
}

func (f *clientFlags) client(g *globals) (*client, error) {
	format, err := checkOutput(f.output)
	if err != nil {
		return nil, err
	}
	f.output = format
	t, err := resolveTarget(f.server, f.token, g.dataDir)
	if err != nil {
		return nil, err
	}
	if err := checkServerURL(t.server); err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("server from %s: %w", t.serverFrom, err))
	}
	return &client{base: t.server, token: t.token, http: &http.Client{}, from: t}, nil
}

// unreachable says which server was tried, where that came from and how to choose another.
func (c *client) unreachable(err error) error {
	return withCode(ExitFailure, fmt.Errorf("reach berth server at %s (from %s): %w\n"+
		"  is the server running there? Choose another with --server URL, BERTH_SERVER=URL, or berth login --server URL",
		c.base, c.from.serverFrom, err))
}

// apiError is the server's error body.
type apiError struct {
	Status int
	Code   string `json:"code"`
	Msg    string `json:"message"`
	Field  string `json:"field"`
}

func (e *apiError) Error() string {
	s := e.Msg
	if e.Field != "" && !strings.Contains(s, e.Field+":") {
		s = e.Field + ": " + s
	}
	return fmt.Sprintf("server: %s (%d %s)", s, e.Status, e.Code)
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeAPIError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

func decodeAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env struct {
		Error apiError `json:"error"`
	}
	e := &env.Error
	if json.Unmarshal(b, &env) != nil || e.Msg == "" {
		e.Msg = strings.TrimSpace(string(b))
	}
	e.Status = resp.StatusCode
	code := ExitFailure
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		code = ExitUsage // the request was refused: nothing ran
	}
	return withCode(code, e)
}

// followLogs reads the job's Server-Sent Events until the "end" event and calls fn for each
// chunk; it returns the final job.
func (c *client) followLogs(ctx context.Context, id string, fn func(job.LogChunk)) (job.Job, error) {
	return c.followLogsQuery(ctx, id, "", fn)
}

// followLogsQuery is followLogs with more of the logs query (e.g. "&tail=3").
func (c *client) followLogsQuery(ctx context.Context, id, query string, fn func(job.LogChunk)) (job.Job, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/jobs/"+id+"/logs?follow=1"+query, nil)
	if err != nil {
		return job.Job{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return job.Job{}, c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return job.Job{}, decodeAPIError(resp)
	}
	var final job.Job
	err = readSSE(resp.Body, func(event, data string) error {
		switch event {
		case "end":
			return json.Unmarshal([]byte(data), &final)
		case "stdout", "stderr", "system", "":
			var ch job.LogChunk
			if err := json.Unmarshal([]byte(data), &ch); err != nil {
				return fmt.Errorf("decode log event: %w", err)
			}
			fn(ch)
		}
		return nil
	})
	if err != nil {
		return final, err
	}
	if final.ID == "" {
		// The stream ended without an end event (server restarted?): ask for the job.
		if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+id, nil, &final); err != nil {
			return final, err
		}
	}
	return final, nil
}

// readSSE parses a text/event-stream body, calling fn(event, data) per event.
func readSSE(r io.Reader, fn func(event, data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 || event != "" {
				if err := fn(event, strings.Join(data, "\n")); err != nil {
					return err
				}
			}
			event, data = "", nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return sc.Err()
}

// printChunk writes a log chunk to the right stream; berth's own lines go to stderr, marked.
func printChunk(stdout, stderr io.Writer, ch job.LogChunk) {
	switch ch.Stream {
	case "stdout":
		io.WriteString(stdout, ch.Text)
	case "stderr":
		io.WriteString(stderr, ch.Text)
	default:
		for _, line := range strings.SplitAfter(ch.Text, "\n") {
			if line != "" {
				io.WriteString(stderr, "  | "+line)
			}
		}
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// raw sends body as is and copies a successful response into out (when not nil).
func (c *client) raw(ctx context.Context, method, path, contentType string, body io.Reader, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeAPIError(resp)
	}
	if out != nil {
		_, err = io.Copy(out, resp.Body)
	}
	return err
}

// tailFile reads what a growing file served at path (a build log) holds past offset, with a
// Range request, and writes it to out; it returns the new offset. Nothing stored yet, or
// nothing new, is not an error.
func (c *client) tailFile(ctx context.Context, path string, offset int64, out io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return offset, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	resp, err := c.http.Do(req)
	if err != nil {
		return offset, c.unreachable(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK: // the server ignored the range: skip what was already shown
		if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
			return offset, nil
		}
	case http.StatusNotFound, http.StatusRequestedRangeNotSatisfiable:
		return offset, nil
	default:
		return offset, decodeAPIError(resp)
	}
	n, err := io.Copy(out, resp.Body)
	return offset + n, err
}
