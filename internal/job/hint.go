package job

import (
	"fmt"
	"regexp"
	"strings"
)

// missingModule matches Python's and R's words for a package the script imports but the
// image does not have. The first non-empty group is the name.
var missingModule = []*regexp.Regexp{
	regexp.MustCompile(`ModuleNotFoundError: No module named '([^'.]+)`),
	regexp.MustCompile(`there is no package called [‘'"]([^’'"]+)[’'"]`),
}

// MissingPackageHint is a hint for a failed job whose output says the script imported a
// package that is not installed (Python's ModuleNotFoundError, R's "there is no package
// called"): it names the block's dependencies field. "" when the output says no such thing.
func MissingPackageHint(output []LogChunk) string {
	// The last such line is the one the script died of.
	for i := len(output) - 1; i >= 0; i-- {
		c := output[i]
		if c.Stream == "system" {
			continue
		}
		for _, re := range missingModule {
			all := re.FindAllStringSubmatch(c.Text, -1)
			if len(all) == 0 {
				continue
			}
			name := all[len(all)-1][1]
			return fmt.Sprintf("hint: the script imports %q, which the image does not have: add it to the block's `dependencies` (pip or CRAN name; `system_packages` for Debian packages)", strings.TrimSpace(name))
		}
	}
	return ""
}
