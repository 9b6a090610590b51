package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// The CLI's configuration: named contexts, each a server and a token, and the current one.
// It lives in os.UserConfigDir()/berth/config.json (or $BERTH_CONFIG), mode 0600 in a 0700
// folder, because it holds tokens.

const defaultServer = "http://127.0.0.1:8760"

// cliConfig is config.json.
type cliConfig struct {
	Current  string                `json:"current_context,omitempty"`
	Contexts map[string]cliContext `json:"contexts"`
}

// cliContext is one server and the token used there, and the image registry berth publish
// pushes to for that server (host:port; "" = none: images are tagged locally only).
type cliContext struct {
	Server   string `json:"server"`
	Token    string `json:"token"`
	Registry string `json:"registry,omitempty"`
}

// configPath is $BERTH_CONFIG, else <user config dir>/berth/config.json.
func configPath() (string, error) {
	if p := os.Getenv("BERTH_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user's config folder (set BERTH_CONFIG to a file path instead): %w", err)
	}
	return filepath.Join(dir, "berth", "config.json"), nil
}

// loadConfig reads the configuration; a missing file is an empty configuration.
func loadConfig() (*cliConfig, string, error) {
	p, err := configPath()
	if err != nil {
		return nil, "", err
	}
	c := &cliConfig{Contexts: map[string]cliContext{}}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, p, nil
	}
	if err != nil {
		return nil, p, fmt.Errorf("read berth config %s: %w", p, err)
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, p, fmt.Errorf("berth config %s: %w (fix or remove the file, then berth login again)", p, err)
	}
	if c.Contexts == nil {
		c.Contexts = map[string]cliContext{}
	}
	return c, p, nil
}

// save writes the configuration atomically, readable by its owner only.
func (c *cliConfig) save(p string) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return fmt.Errorf("write berth config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write berth config: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write berth config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write berth config: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("write berth config %s: %w", p, err)
	}
	return nil
}

// target is the server a command talks to and the token it uses, with where each came from,
// so that an error can say so.
type target struct {
	server, serverFrom string
	token, tokenFrom   string
}

// resolveTarget applies the precedence flags > env (BERTH_SERVER, BERTH_TOKEN) > the current
// context > defaults (http://127.0.0.1:8760 and the admin token file in --data-dir). A
// context's token is used only with the context's own server.
func resolveTarget(flagServer, flagToken, dataDir string) (target, error) {
	var t target
	cfg, path, cfgErr := loadConfig()
	var cur *cliContext
	curName := ""
	if cfgErr == nil && cfg.Current != "" {
		if c, ok := cfg.Contexts[cfg.Current]; ok {
			cur, curName = &c, cfg.Current
		}
	}
	switch {
	case flagServer != "":
		t.server, t.serverFrom = flagServer, "--server"
	case os.Getenv("BERTH_SERVER") != "":
		t.server, t.serverFrom = os.Getenv("BERTH_SERVER"), "BERTH_SERVER"
	case cur != nil:
		t.server, t.serverFrom = cur.Server, fmt.Sprintf("context %q in %s", curName, path)
	default:
		if cfgErr != nil {
			return t, withCode(ExitUsage, cfgErr)
		}
		t.server, t.serverFrom = defaultServer, "the default (no --server, BERTH_SERVER or berth login)"
	}
	t.server = strings.TrimRight(t.server, "/")
	switch {
	case flagToken != "":
		t.token, t.tokenFrom = flagToken, "--token"
	case os.Getenv("BERTH_TOKEN") != "":
		t.token, t.tokenFrom = os.Getenv("BERTH_TOKEN"), "BERTH_TOKEN"
	case cur != nil && strings.TrimRight(cur.Server, "/") == t.server:
		t.token, t.tokenFrom = cur.Token, fmt.Sprintf("context %q", curName)
	default:
		if b, err := os.ReadFile(filepath.Join(dataDir, adminTokenFile)); err == nil {
			t.token, t.tokenFrom = strings.TrimSpace(string(b)), "the admin token file in --data-dir"
		}
	}
	if t.token == "" {
		return t, withCode(ExitUsage, fmt.Errorf("no API token for %s: run berth login --server %s, or pass --token or set BERTH_TOKEN (the server wrote its admin token to <data-dir>/%s on first start)", t.server, t.server, adminTokenFile))
	}
	return t, nil
}

// checkServerURL refuses a server that is not an http(s) URL with a host.
func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return withCode(ExitUsage, fmt.Errorf("--server: %q is not allowed; use an http:// or https:// URL such as %s", s, defaultServer))
	}
	return nil
}

func newLoginCmd(g *globals) *cobra.Command {
	var server, token, name, registry string
	cmd := &cobra.Command{
		Use:   "login --server URL [--token T] [--context NAME] [--registry HOST:PORT]",
		Short: "Check a token against a server and keep both as a named context",
		Long: `Check a token against a berth server (an authenticated request) and store the server and
the token as a context in the berth config file (` + "`os.UserConfigDir()/berth/config.json`" + `, or
$BERTH_CONFIG; mode 0600). The context becomes the current one: later commands use it without
--server or --token. The token comes from --token, else BERTH_TOKEN, else the first line of
stdin. It is never printed.

Precedence for every command: --server/--token flags, then BERTH_SERVER/BERTH_TOKEN, then the
current context.`,
		Example: `  berth login --server http://127.0.0.1:8760 < ~/.local/share/berth/admin-token
  berth login --server https://berth.example.org --context prod --token "$TOKEN"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if server == "" {
				server = os.Getenv("BERTH_SERVER")
			}
			if server == "" {
				return withCode(ExitUsage, fmt.Errorf("--server is required: the URL of a berth server, such as %s", defaultServer))
			}
			server = strings.TrimRight(server, "/")
			if err := checkServerURL(server); err != nil {
				return err
			}
			if token == "" {
				token = os.Getenv("BERTH_TOKEN")
			}
			if token == "" {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return withCode(ExitUsage, fmt.Errorf("read the token from stdin: %w", err))
				}
				token = strings.TrimSpace(line)
			}
			if token == "" {
				return withCode(ExitUsage, fmt.Errorf("no token: pass --token, set BERTH_TOKEN, or give it on stdin"))
			}
			if name == "" {
				name = "default"
			}
			if registry != "" {
				if err := checkRegistryHost(registry); err != nil {
					return withCode(ExitUsage, err)
				}
			}
			if strings.ContainsAny(name, " \t\n/") {
				return withCode(ExitUsage, fmt.Errorf("--context: %q is not allowed; use a name without spaces or slashes", name))
			}
			c := &client{base: server, token: token, http: &http.Client{},
				from: target{server: server, serverFrom: "--server"}}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/jobs?limit=1", nil, nil); err != nil {
				var ae *apiError
				if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
					return withCode(ExitUsage, fmt.Errorf("login to %s refused, nothing stored: %w", server, err))
				}
				return err
			}
			cfg, path, err := loadConfig()
			if err != nil {
				return withCode(ExitFailure, err)
			}
			keep := ""
			if old, ok := cfg.Contexts[name]; ok && strings.TrimRight(old.Server, "/") == server {
				keep = old.Registry // a new token for the same server keeps its registry
			}
			if registry != "" {
				keep = registry
			}
			cfg.Contexts[name] = cliContext{Server: server, Token: token, Registry: keep}
			cfg.Current = name
			if err := cfg.save(path); err != nil {
				return withCode(ExitFailure, err)
			}
			fmt.Fprintf(g.stdout, "logged in to %s as context %q (stored in %s)\n", server, name, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "berth server URL (env BERTH_SERVER)")
	cmd.Flags().StringVar(&token, "token", "", "API token (default: BERTH_TOKEN, else the first line of stdin)")
	cmd.Flags().StringVar(&name, "context", "default", "name of the context to store")
	cmd.Flags().StringVar(&registry, "registry", "", "the image registry (host:port) berth publish pushes to for this server (see berth context set-registry)")
	return cmd
}

func newLogoutCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "logout [--context NAME]",
		Short: "Forget a context's token and server (default: the current context)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return withCode(ExitFailure, err)
			}
			if name == "" {
				name = cfg.Current
			}
			if name == "" {
				return withCode(ExitUsage, fmt.Errorf("no current context: nothing to log out of (berth context list shows the contexts)"))
			}
			return removeContext(g, cfg, path, name)
		},
	}
	cmd.Flags().StringVar(&name, "context", "", "the context to forget (default: the current one)")
	return cmd
}

func removeContext(g *globals, cfg *cliConfig, path, name string) error {
	if _, ok := cfg.Contexts[name]; !ok {
		return withCode(ExitUsage, fmt.Errorf("context %q: not found; known: %s", name, contextNames(cfg)))
	}
	delete(cfg.Contexts, name)
	if cfg.Current == name {
		cfg.Current = ""
	}
	if err := cfg.save(path); err != nil {
		return withCode(ExitFailure, err)
	}
	fmt.Fprintf(g.stdout, "context %q removed\n", name)
	return nil
}

func contextNames(cfg *cliConfig) string {
	if len(cfg.Contexts) == 0 {
		return "none (berth login makes one)"
	}
	names := make([]string, 0, len(cfg.Contexts))
	for n := range cfg.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// contextView is a context as list prints it: never its token.
type contextView struct {
	Name     string `json:"name"`
	Server   string `json:"server"`
	Registry string `json:"registry,omitempty"`
	Current  bool   `json:"current"`
}

func newContextCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "List, switch and remove the contexts berth login stored",
	}
	var format string
	list := &cobra.Command{
		Use: "list", Short: "List contexts (never their tokens)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := loadConfig()
			if err != nil {
				return withCode(ExitFailure, err)
			}
			views := []contextView{}
			for n, c := range cfg.Contexts {
				views = append(views, contextView{Name: n, Server: c.Server, Registry: c.Registry, Current: n == cfg.Current})
			}
			sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
			return printOut(g.stdout, format, views, func(w io.Writer) error {
				t := newTable(w, "CURRENT", "NAME", "SERVER", "REGISTRY")
				for _, v := range views {
					mark := " "
					if v.Current {
						mark = "*"
					}
					t.row(mark, v.Name, v.Server, v.Registry)
				}
				return t.flush()
			})
		},
	}
	registerOutput(list, &format)
	use := &cobra.Command{
		Use: "use NAME", Short: "Make a context the current one", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return withCode(ExitFailure, err)
			}
			c, ok := cfg.Contexts[args[0]]
			if !ok {
				return withCode(ExitUsage, fmt.Errorf("context %q: not found; known: %s", args[0], contextNames(cfg)))
			}
			cfg.Current = args[0]
			if err := cfg.save(path); err != nil {
				return withCode(ExitFailure, err)
			}
			fmt.Fprintf(g.stdout, "current context: %s (%s)\n", args[0], c.Server)
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Forget a context", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return withCode(ExitFailure, err)
			}
			return removeContext(g, cfg, path, args[0])
		},
	}
	var ctxName string
	var clear bool
	setRegistry := &cobra.Command{
		Use:   "set-registry HOST:PORT [--context NAME] | --clear",
		Short: "Set the image registry berth publish pushes to for a context's server",
		Long: `Set the image registry (host:port, as image references name it) that berth service publish
and berth component publish push to when this context is used. Its logins need nothing stored:
the context's API token is the registry password, and berth, the registry's token issuer,
answers the registry's short-lived JWT. --clear forgets it: publish then tags images locally.
BERTH_REGISTRY and publish's --registry flag come before it.`,
		Example: `  berth context set-registry reg.example:5000
  berth context set-registry 127.0.0.1:5000 --context local
  berth context set-registry --clear`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if clear == (len(args) == 1) {
				return withCode(ExitUsage, fmt.Errorf("give a registry HOST:PORT, or --clear"))
			}
			reg := ""
			if len(args) == 1 {
				reg = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
				if err := checkRegistryHost(reg); err != nil {
					return withCode(ExitUsage, err)
				}
			}
			cfg, path, err := loadConfig()
			if err != nil {
				return withCode(ExitFailure, err)
			}
			name := ctxName
			if name == "" {
				name = cfg.Current
			}
			c, ok := cfg.Contexts[name]
			if !ok {
				return withCode(ExitUsage, fmt.Errorf("context %q: not found (berth login first); known: %s", name, contextNames(cfg)))
			}
			c.Registry = reg
			cfg.Contexts[name] = c
			if err := cfg.save(path); err != nil {
				return withCode(ExitFailure, err)
			}
			if reg == "" {
				fmt.Fprintf(g.stdout, "context %s: no registry (publish tags images locally)\n", name)
			} else {
				fmt.Fprintf(g.stdout, "context %s: publish pushes to %s\n", name, reg)
			}
			return nil
		},
	}
	setRegistry.Flags().StringVar(&ctxName, "context", "", "the context to change (default: the current one)")
	setRegistry.Flags().BoolVar(&clear, "clear", false, "forget the context's registry")
	cmd.AddCommand(list, use, remove, setRegistry)
	return cmd
}

// checkRegistryHost refuses what is not a registry address: host[:port], no scheme or path.
func checkRegistryHost(h string) error {
	if h == "" || strings.ContainsAny(h, "/ @") || (!strings.ContainsAny(h, ".:") && h != "localhost") {
		return fmt.Errorf("registry %q: use host:port (or a host name with a dot), as image references name it, e.g. reg.example:5000", h)
	}
	return nil
}

// resolveRegistry is the registry publish pushes to: --registry, else BERTH_REGISTRY, else
// the current context's (when the command talks to that context's server); "" = none.
func resolveRegistry(flag string, t target) (string, error) {
	r := flag
	if r == "" {
		r = os.Getenv("BERTH_REGISTRY")
	}
	if r == "" {
		if cfg, _, err := loadConfig(); err == nil && cfg.Current != "" {
			if c, ok := cfg.Contexts[cfg.Current]; ok && strings.TrimRight(c.Server, "/") == t.server {
				r = c.Registry
			}
		}
	}
	if r == "" {
		return "", nil
	}
	return r, checkRegistryHost(r)
}
