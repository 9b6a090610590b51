package image

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"sort"
	"strings"

	"github.com/berthproject/berth/runtimes"
)

// recipe is how a base runtime is made: Debian packages debootstrapped into a root
// filesystem, then a Dockerfile adding the user and the helper library.
type recipe struct {
	lang       string
	ref        string
	packages   []string
	dockerfile string
	files      []string // folders of runtimes.FS copied into the build context
}

const userSetup = `RUN groupadd -g 1000 berth && useradd -u 1000 -g 1000 -m -d /home/berth -s /bin/sh berth \
 && mkdir -p /data /code && chown 1000:1000 /data && chmod 1777 /tmp
ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
`

// The python base is a venv of Debian's own python3 made with --system-site-packages: a
// component image derived from it can install Debian's python3-* packages (apt-get, or dpkg -i
// of a downloaded .deb without network) and import them, while what pip installs into the
// venv comes first on sys.path and wins over a Debian package of the same name.
var recipes = map[string]recipe{
	"python": {
		lang: "python", ref: "berth/python:3.11",
		packages: []string{"python3", "python3-venv", "ca-certificates"},
		files:    []string{"python"},
		dockerfile: `FROM {{ROOTFS}}
` + userSetup + `COPY python/berth /opt/berth/lib/python/berth
RUN python3 -m venv --system-site-packages /opt/berth/venv \
 && echo /opt/berth/lib/python > "$(/opt/berth/venv/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/berth.pth" \
 && /opt/berth/venv/bin/python3 -c 'import berth'
ENV PATH=/opt/berth/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER 1000:1000
WORKDIR /data
`,
	},
	"r": {
		lang: "r", ref: "berth/r:4.2",
		packages: []string{"r-base-core", "r-cran-jsonlite", "ca-certificates"},
		files:    []string{"r"},
		dockerfile: `FROM {{ROOTFS}}
` + userSetup + `COPY r/berth /tmp/berth-r
RUN R CMD INSTALL --no-docs --no-html /tmp/berth-r && rm -rf /tmp/berth-r \
 && Rscript -e 'library(berth)'
USER 1000:1000
WORKDIR /data
`,
	},
	"shell": {
		lang: "shell", ref: "berth/shell:latest",
		packages: []string{"ca-certificates"},
		dockerfile: `FROM {{ROOTFS}}
` + userSetup + `USER 1000:1000
WORKDIR /data
`,
	},
}

// recipeHash covers everything that makes a base image: language, suite, packages,
// Dockerfile, helper-library files and the recipe version (not the mirror).
func recipeHash(r recipe, suite, version string) string {
	h := sha256.New()
	pk := append([]string(nil), r.packages...)
	sort.Strings(pk)
	for _, part := range []string{"lang", r.lang, "suite", suite, "packages", strings.Join(pk, ","), "dockerfile", r.dockerfile, "version", version} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	for _, dir := range r.files {
		fs.WalkDir(runtimes.FS, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, _ := runtimes.FS.ReadFile(p)
			h.Write([]byte(p))
			h.Write([]byte{0})
			h.Write(b)
			h.Write([]byte{0})
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil))
}
