// Package authz is berth's one authorization point: every handler and the proxy ask
// Can(principal, action, resource), and nothing else in berth looks at a role or a scope.
//
// The rules, in order:
//
//  1. A token scoped to a service (service:<name>) reaches that service's proxy and may make
//     a sign-in link; nothing else.
//  2. An admin may do anything, anywhere.
//  3. A resource of another project is invisible (404), except a bucket shared with the
//     caller's project, which is readable, and a shared component, which is usable.
//  4. The role must reach the action's minimum: read-only < member < project-admin < admin.
//     A member cancels and deletes only its own jobs; a project admin, any of its project's.
//  5. Bucket scopes narrow storage to the buckets named (read, or read and write); component
//     scopes narrow components and configurations to the components named. A scoped token
//     has no registry access.
package authz

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/berthproject/berth/internal/auth"
)

// Action is what a request does.
type Action string

// Actions. Read actions need read-only, write actions member, management actions
// project-admin, server actions admin (see minRole).
const (
	JobSubmit Action = "job.submit"
	JobRead   Action = "job.read"
	JobCancel Action = "job.cancel"
	JobDelete Action = "job.delete"

	ComponentRead     Action = "component.read"
	ComponentRegister Action = "component.register"
	ComponentDelete   Action = "component.delete"
	ComponentAction   Action = "component.action" // a synchronous action

	ConfigRead        Action = "config.read"
	ConfigWrite       Action = "config.write"
	ConfigRun         Action = "config.run"
	ConfigDelete      Action = "config.delete"
	CredentialsRead   Action = "credentials.read" // whether they are stored, never their value
	CredentialsWrite  Action = "credentials.write"
	CredentialsDelete Action = "credentials.delete"

	BucketCreate Action = "bucket.create"
	BucketRead   Action = "bucket.read" // the bucket, its tables and their rows
	BucketWrite  Action = "bucket.write"
	BucketDelete Action = "bucket.delete"
	BucketShare  Action = "bucket.share"
	FileRead     Action = "file.read"
	FileWrite    Action = "file.write"
	FileDelete   Action = "file.delete"

	ServiceCreate  Action = "service.create"
	ServiceRead    Action = "service.read" // state, logs, build log, build context
	ServiceOperate Action = "service.operate"
	ServiceDelete  Action = "service.delete"
	ServiceUse     Action = "service.use" // the proxy
	EntityWrite    Action = "entity.write"

	ImageRead  Action = "image.read" // a generated image's build log
	SigninLink Action = "signin.link"

	// The registry's token endpoint grants these per repository (<project>/<name>): pull to
	// who may read the project, push to a member, anything else (delete, the catalog) to an
	// admin only.
	RegistryPull   Action = "registry.pull"
	RegistryPush   Action = "registry.push"
	RegistryManage Action = "registry.manage"

	TokenManage   Action = "token.manage"
	AuditRead     Action = "audit.read"
	ProjectRead   Action = "project.read"
	ProjectManage Action = "project.manage" // create projects, set quotas
	ServerRead    Action = "server.read"    // metrics of the whole server, the image list
	ImageManage   Action = "image.manage"   // remove images, run the image collector
)

// Actions lists every action, for tests that enumerate them.
var Actions = []Action{JobSubmit, JobRead, JobCancel, JobDelete,
	ComponentRead, ComponentRegister, ComponentDelete, ComponentAction,
	ConfigRead, ConfigWrite, ConfigRun, ConfigDelete, CredentialsRead, CredentialsWrite, CredentialsDelete,
	BucketCreate, BucketRead, BucketWrite, BucketDelete, BucketShare, FileRead, FileWrite, FileDelete,
	ServiceCreate, ServiceRead, ServiceOperate, ServiceDelete, ServiceUse, EntityWrite,
	ImageRead, SigninLink, RegistryPull, RegistryPush, RegistryManage, TokenManage, AuditRead, ProjectRead, ProjectManage, ServerRead, ImageManage}

// Resource is what an action is on. Project is the owning project; Owner is the token name
// that made it (jobs); Shared marks a component usable by every project; SharedWith lists
// the projects a bucket is shared with. Kind and ID name it in errors. A zero Project means
// "the caller's project" (listing, creating).
type Resource struct {
	Kind       string
	ID         string
	Project    string
	Owner      string
	Shared     bool
	SharedWith []string
	// Bucket is the bucket a table or a storage action is in (for bucket scopes); Component
	// the component a configuration runs (for component scopes).
	Bucket    string
	Component string
}

// Denied is a refusal: Status is 403 (the caller may know the resource but not do this) or
// 404 (the resource is not the caller's to know of).
type Denied struct {
	Status int
	Reason string
}

func (d *Denied) Error() string { return d.Reason }

// ErrDenied matches every *Denied with errors.Is.
var ErrDenied = errors.New("authz: denied")

func (d *Denied) Is(target error) bool { return target == ErrDenied }

var rank = map[string]int{auth.RoleReadOnly: 1, auth.RoleMember: 2, auth.RoleProjectAdmin: 3, auth.RoleAdmin: 4}

// minRole is the least role each action needs in the resource's project.
var minRole = map[Action]string{
	JobSubmit: auth.RoleMember, JobRead: auth.RoleReadOnly, JobCancel: auth.RoleMember, JobDelete: auth.RoleMember,
	ComponentRead: auth.RoleReadOnly, ComponentRegister: auth.RoleProjectAdmin, ComponentDelete: auth.RoleProjectAdmin,
	ComponentAction: auth.RoleMember,
	ConfigRead:      auth.RoleReadOnly, ConfigWrite: auth.RoleMember, ConfigRun: auth.RoleMember, ConfigDelete: auth.RoleMember,
	CredentialsRead: auth.RoleReadOnly, CredentialsWrite: auth.RoleMember, CredentialsDelete: auth.RoleMember,
	BucketCreate: auth.RoleMember, BucketRead: auth.RoleReadOnly, BucketWrite: auth.RoleMember, BucketDelete: auth.RoleMember,
	BucketShare: auth.RoleProjectAdmin, FileRead: auth.RoleReadOnly, FileWrite: auth.RoleMember, FileDelete: auth.RoleMember,
	ServiceCreate: auth.RoleMember, ServiceRead: auth.RoleReadOnly, ServiceOperate: auth.RoleMember,
	ServiceDelete: auth.RoleMember, ServiceUse: auth.RoleReadOnly, EntityWrite: auth.RoleMember,
	ImageRead: auth.RoleReadOnly, SigninLink: auth.RoleReadOnly,
	RegistryPull: auth.RoleReadOnly, RegistryPush: auth.RoleMember, RegistryManage: auth.RoleAdmin,
	TokenManage: auth.RoleProjectAdmin, AuditRead: auth.RoleProjectAdmin, ProjectRead: auth.RoleReadOnly,
	ProjectManage: auth.RoleAdmin, ServerRead: auth.RoleAdmin, ImageManage: auth.RoleAdmin,
}

// readActions may reach a bucket shared with the caller's project.
var bucketReads = map[Action]bool{BucketRead: true}

// componentUses may reach a shared component from any project.
var componentUses = map[Action]bool{ComponentRead: true, ComponentAction: true}

// Can decides whether p may do a on r: nil, or a *Denied saying why.
func Can(p auth.Principal, a Action, r Resource) error {
	need, ok := minRole[a]
	if !ok {
		return &Denied{Status: http.StatusForbidden, Reason: fmt.Sprintf("no rule for action %q", a)}
	}
	scopes := p.Scopes()
	for _, s := range scopes {
		if s.Kind == "service" || s.Kind == "invalid" {
			if a == ServiceUse && r.ID == s.ID && r.Project != "" && r.Project != p.Project && p.Role != auth.RoleAdmin {
				return notFound(r) // a scope names a service of the token's own project
			}
			if (a == ServiceUse && r.ID == s.ID) || a == SigninLink {
				return nil
			}
			return &Denied{Status: http.StatusForbidden, Reason: "this token is scoped to service:" + s.ID + "; it reaches only /proxy/" + s.ID + "/"}
		}
	}
	if rank[p.Role] == 0 {
		return &Denied{Status: http.StatusForbidden, Reason: fmt.Sprintf("role %q is not known", p.Role)}
	}
	if p.Role != auth.RoleAdmin {
		if r.Project != "" && r.Project != p.Project {
			switch {
			case r.Kind == "component" && r.Shared: // known to every project; used, never changed, below
			case bucketReads[a] && slices.Contains(r.SharedWith, p.Project):
			case slices.Contains(r.SharedWith, p.Project):
				return &Denied{Status: http.StatusForbidden, Reason: fmt.Sprintf("%s %s is shared with project %s read-only", r.Kind, r.ID, p.Project)}
			default:
				return notFound(r)
			}
		}
		if r.Kind == "component" && r.Shared && !componentUses[a] {
			return &Denied{Status: http.StatusForbidden, Reason: "shared components are registered and removed by an admin"}
		}
		if rank[p.Role] < rank[need] {
			return &Denied{Status: http.StatusForbidden, Reason: fmt.Sprintf("%s needs role %s or above; this token is %s", a, need, p.Role)}
		}
		if (a == JobCancel || a == JobDelete) && r.Owner != "" && r.Owner != p.Name && rank[p.Role] < rank[auth.RoleProjectAdmin] {
			return &Denied{Status: http.StatusForbidden, Reason: fmt.Sprintf("job %s was started by %s; a member may %s only its own jobs", r.ID, r.Owner, verb(a))}
		}
	}
	return checkScopes(scopes, a, r)
}

func checkScopes(scopes []auth.ScopeItem, a Action, r Resource) error {
	if len(scopes) > 0 && isRegistry(a) {
		// A scope names what a token reaches; no scope kind names a repository.
		return &Denied{Status: http.StatusForbidden, Reason: "this token is scoped (" + scopes[0].Kind + "); a scoped token has no registry access"}
	}
	var buckets, components []auth.ScopeItem
	for _, s := range scopes {
		switch s.Kind {
		case "bucket":
			buckets = append(buckets, s)
		case "component":
			components = append(components, s)
		}
	}
	if len(buckets) > 0 && isStorage(a) {
		if r.Bucket == "" { // files, listing and creating: no bucket to match
			if a == BucketCreate || a == BucketShare || a == BucketDelete {
				return &Denied{Status: http.StatusForbidden, Reason: "this token is scoped to buckets; it cannot create, share or delete buckets"}
			}
			return nil
		}
		for _, s := range buckets {
			if s.ID == r.Bucket && (s.Access == "write" || a == BucketRead) {
				return nil
			}
		}
		return &Denied{Status: http.StatusForbidden, Reason: fmt.Sprintf("this token's bucket scopes do not allow %s on bucket %s", a, r.Bucket)}
	}
	if len(components) > 0 && isComponent(a) && r.Component != "" {
		for _, s := range components {
			if s.ID == r.Component {
				return nil
			}
		}
		return &Denied{Status: http.StatusForbidden, Reason: fmt.Sprintf("this token's component scopes do not include component %s", r.Component)}
	}
	return nil
}

func isStorage(a Action) bool {
	switch a {
	case BucketCreate, BucketRead, BucketWrite, BucketDelete, BucketShare:
		return true
	}
	return false
}

func isRegistry(a Action) bool {
	return a == RegistryPull || a == RegistryPush || a == RegistryManage
}

func isComponent(a Action) bool {
	switch a {
	case ComponentRead, ComponentRegister, ComponentDelete, ComponentAction, ConfigRead, ConfigWrite, ConfigRun,
		ConfigDelete, CredentialsRead, CredentialsWrite, CredentialsDelete:
		return true
	}
	return false
}

func notFound(r Resource) error {
	what := r.Kind
	if r.ID != "" {
		what += " " + r.ID
	}
	return &Denied{Status: http.StatusNotFound, Reason: what + " not found"}
}

func verb(a Action) string {
	if a == JobCancel {
		return "cancel"
	}
	return "delete"
}

// Visible reports whether p may see resources of project (for filtering lists): its own
// project, or any project for an admin.
func Visible(p auth.Principal, project string) bool {
	return p.Role == auth.RoleAdmin || project == p.Project
}
