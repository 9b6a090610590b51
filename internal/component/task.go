package component

import (
	"strconv"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
)

// componentTask is the container of a component run: the image's own command, /data, the
// common interface's environment, and the same confinement as blocks.
func (r *run) componentTask(ref, dataDir string) runtime.TaskSpec {
	cr := r.j.Component
	t := job.Task(r.cfg, r.e.limits(*cr), cr.Component.Network, nil, ref, r.j.ID)
	t.Mounts = []runtime.Mount{{Source: dataDir, Target: job.DataDir}}
	for k, v := range r.componentEnv(cr.Component) {
		t.Env[k] = v
	}
	t.Env["BERTH_COMPONENT_ID"] = cr.Component.ID
	t.Env["BERTH_CONFIG_ID"] = cr.Config.ID
	if cr.Component.ForwardToken && r.Token() != "" {
		t.Env["KBC_TOKEN"] = r.Token()
		t.Env["KBC_URL"] = r.e.cfg.publicURL()
	}
	if cr.Component.ForwardTokenDetails {
		t.Env["KBC_PROJECTNAME"] = orDefault(r.e.cfg.ProjectName, "berth")
		if cr.TokenID != "" {
			t.Env["KBC_TOKENID"] = cr.TokenID
			t.Env["KBC_TOKENDESC"] = cr.TokenName
		}
	}
	delete(t.Env, "PYTHONDONTWRITEBYTECODE")
	return t
}

// componentEnv is the environment Keboola's runner gives every image of a job (the component
// and each processor, which sees its own id as KBC_COMPONENTID), with berth's values where
// berth has the concept: see docs/components.md.
func (r *run) componentEnv(comp spec.Component) map[string]string {
	cr := r.j.Component
	env := map[string]string{
		"KBC_DATADIR":               job.DataDir + "/",
		"KBC_RUNID":                 r.j.ID,
		"KBC_PROJECTID":             orDefault(r.e.cfg.ProjectID, "berth"),
		"KBC_CONFIGID":              cr.Config.ID,
		"KBC_CONFIGVERSION":         strconv.Itoa(cr.ConfigVersion),
		"KBC_COMPONENTID":           comp.ID,
		"KBC_STACKID":               r.e.cfg.stackID(),
		"KBC_STAGING_FILE_PROVIDER": "local",
		"KBC_COMPONENT_RUN_MODE":    orDefault(cr.Mode, "run"),
		// queuev2: Keboola's libraries drop write_always on the legacy queue.
		"KBC_PROJECT_FEATURE_GATES": "queuev2",
	}
	if r.cfgRow != nil {
		env["KBC_CONFIGROWID"] = r.cfgRow.ID
	}
	if dts := cr.Component.DataTypeSupport; dts != "" {
		env["KBC_DATA_TYPE_SUPPORT"] = dts
		env["KBC_PROJECT_FEATURE_GATES"] = "queuev2,new-native-types"
	}
	return env
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
