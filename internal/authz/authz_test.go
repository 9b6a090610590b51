package authz

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/berthproject/berth/internal/auth"
)

// want is the rule of each action, written out here independently of minRole: the least role
// in the resource's own project, and whether a resource shared from another project (a bucket
// shared with the caller, a shared component) may be reached.
var want = map[Action]struct {
	min    string
	shared bool
}{
	JobSubmit: {auth.RoleMember, false}, JobRead: {auth.RoleReadOnly, false}, JobCancel: {auth.RoleMember, false},
	JobDelete:     {auth.RoleMember, false},
	ComponentRead: {auth.RoleReadOnly, true}, ComponentRegister: {auth.RoleProjectAdmin, false},
	ComponentDelete: {auth.RoleProjectAdmin, false}, ComponentAction: {auth.RoleMember, true},
	ConfigRead: {auth.RoleReadOnly, false}, ConfigWrite: {auth.RoleMember, false}, ConfigRun: {auth.RoleMember, false},
	ConfigDelete: {auth.RoleMember, false}, CredentialsRead: {auth.RoleReadOnly, false},
	CredentialsWrite: {auth.RoleMember, false}, CredentialsDelete: {auth.RoleMember, false},
	BucketCreate: {auth.RoleMember, false}, BucketRead: {auth.RoleReadOnly, true}, BucketWrite: {auth.RoleMember, false},
	BucketDelete: {auth.RoleMember, false}, BucketShare: {auth.RoleProjectAdmin, false},
	FileRead: {auth.RoleReadOnly, false}, FileWrite: {auth.RoleMember, false}, FileDelete: {auth.RoleMember, false},
	ServiceCreate: {auth.RoleMember, false}, ServiceRead: {auth.RoleReadOnly, false},
	ServiceOperate: {auth.RoleMember, false}, ServiceDelete: {auth.RoleMember, false},
	ServiceUse: {auth.RoleReadOnly, false}, EntityWrite: {auth.RoleMember, false},
	ImageRead: {auth.RoleReadOnly, false}, SigninLink: {auth.RoleReadOnly, false},
	RegistryPull: {auth.RoleReadOnly, false}, RegistryPush: {auth.RoleMember, false}, RegistryManage: {auth.RoleAdmin, false},
	TokenManage: {auth.RoleProjectAdmin, false}, AuditRead: {auth.RoleProjectAdmin, false},
	ProjectRead: {auth.RoleReadOnly, false}, ProjectManage: {auth.RoleAdmin, false}, ServerRead: {auth.RoleAdmin, false},
	ImageManage: {auth.RoleAdmin, false},
}

var order = map[string]int{auth.RoleReadOnly: 1, auth.RoleMember: 2, auth.RoleProjectAdmin: 3, auth.RoleAdmin: 4}

// kindOf is the resource kind an action is on, so shared-ness means what it means for it.
func kindOf(a Action) string {
	switch a {
	case ComponentRead, ComponentRegister, ComponentDelete, ComponentAction:
		return "component"
	case BucketCreate, BucketRead, BucketWrite, BucketDelete, BucketShare:
		return "bucket"
	}
	return "thing"
}

func status(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var d *Denied
	if !errors.As(err, &d) {
		return -1
	}
	return d.Status
}

// TestCanEveryActionRoleAndOwnership enumerates every action × role × ownership: the caller's
// own project, another project's, and another project's shared with the caller.
func TestCanEveryActionRoleAndOwnership(t *testing.T) {
	if len(want) != len(Actions) {
		t.Fatalf("the test knows %d actions, authz has %d: write the new action's rule here", len(want), len(Actions))
	}
	for _, a := range Actions {
		w, ok := want[a]
		if !ok {
			t.Fatalf("no expected rule for %s", a)
		}
		for _, role := range auth.Roles {
			p := auth.Principal{TokenID: "tok_1", Name: "ann", Role: role, Project: "p1"}
			for _, own := range []string{"own", "foreign", "foreign-shared"} {
				r := Resource{Kind: kindOf(a), ID: "x", Owner: "ann"}
				switch own {
				case "own":
					r.Project = "p1"
				case "foreign":
					r.Project = "p2"
				case "foreign-shared":
					r.Project = "p2"
					r.Shared = kindOf(a) == "component"
					r.SharedWith = []string{"p1"}
				}
				exp := http.StatusOK
				reachable := own == "own" || (own == "foreign-shared" && w.shared)
				switch {
				case role == auth.RoleAdmin:
				case !reachable && own == "foreign-shared":
					exp = http.StatusForbidden // known (shared), but only read or used from here
				case !reachable:
					exp = http.StatusNotFound
				case order[role] < order[w.min]:
					exp = http.StatusForbidden
				}
				t.Run(fmt.Sprintf("%s/%s/%s", a, role, own), func(t *testing.T) {
					if got := status(Can(p, a, r)); got != exp {
						t.Fatalf("Can(%s, %s, %s) = %d, want %d (%v)", role, a, own, got, exp, Can(p, a, r))
					}
				})
			}
		}
	}
}

func TestJobsOfOthers(t *testing.T) {
	others := Resource{Kind: "job", ID: "j1", Project: "p1", Owner: "bob"}
	for _, c := range []struct {
		role string
		a    Action
		want int
	}{
		{auth.RoleMember, JobRead, 200}, {auth.RoleMember, JobCancel, 403}, {auth.RoleMember, JobDelete, 403},
		{auth.RoleProjectAdmin, JobCancel, 200}, {auth.RoleProjectAdmin, JobDelete, 200},
		{auth.RoleReadOnly, JobRead, 200}, {auth.RoleReadOnly, JobCancel, 403},
	} {
		p := auth.Principal{Name: "ann", Role: c.role, Project: "p1"}
		if got := status(Can(p, c.a, others)); got != c.want {
			t.Errorf("%s %s on bob's job: %d, want %d", c.role, c.a, got, c.want)
		}
	}
}

func TestScopes(t *testing.T) {
	svc := auth.Principal{Name: "s", Role: auth.RoleMember, Project: "p1", Scope: "service:web"}
	bkt := auth.Principal{Name: "b", Role: auth.RoleMember, Project: "p1", Scope: "bucket:in.c-a:read,bucket:out.c-b:write"}
	cmp := auth.Principal{Name: "c", Role: auth.RoleMember, Project: "p1", Scope: "component:ex"}
	adminSvc := auth.Principal{Name: "as", Role: auth.RoleAdmin, Project: "p1", Scope: "service:web"}
	for _, c := range []struct {
		name string
		p    auth.Principal
		a    Action
		r    Resource
		want int
	}{
		{"service scope reaches its service", svc, ServiceUse, Resource{Kind: "service", ID: "web", Project: "p1"}, 200},
		{"service scope makes sign-in links", svc, SigninLink, Resource{}, 200},
		{"service scope: no registry pull", svc, RegistryPull, Resource{Kind: "repository", ID: "p1/app", Project: "p1"}, 403},
		{"bucket scope: no registry push", bkt, RegistryPush, Resource{Kind: "repository", ID: "p1/app", Project: "p1"}, 403},
		{"component scope: no registry pull", cmp, RegistryPull, Resource{Kind: "repository", ID: "p1/app", Project: "p1"}, 403},
		{"service scope: no other service", svc, ServiceUse, Resource{Kind: "service", ID: "db", Project: "p1"}, 403},
		{"service scope: not another project's service of that name", svc, ServiceUse, Resource{Kind: "service", ID: "web", Project: "p2"}, 404},
		{"service scope: no API", svc, JobRead, Resource{Kind: "job", ID: "j", Project: "p1"}, 403},
		{"service scope narrows an admin too", adminSvc, JobRead, Resource{Kind: "job", ID: "j", Project: "p1"}, 403},
		{"bucket read scope reads", bkt, BucketRead, Resource{Kind: "table", Project: "p1", Bucket: "in.c-a"}, 200},
		{"bucket read scope does not write", bkt, BucketWrite, Resource{Kind: "table", Project: "p1", Bucket: "in.c-a"}, 403},
		{"bucket write scope writes", bkt, BucketWrite, Resource{Kind: "table", Project: "p1", Bucket: "out.c-b"}, 200},
		{"bucket write scope reads", bkt, BucketRead, Resource{Kind: "table", Project: "p1", Bucket: "out.c-b"}, 200},
		{"bucket scope: no other bucket", bkt, BucketRead, Resource{Kind: "table", Project: "p1", Bucket: "in.c-z"}, 403},
		{"bucket scope: no new buckets", bkt, BucketCreate, Resource{Kind: "bucket", Project: "p1"}, 403},
		{"bucket scope: jobs untouched", bkt, JobSubmit, Resource{Kind: "job", Project: "p1"}, 200},
		{"bucket scope does not widen the role", auth.Principal{Role: auth.RoleReadOnly, Project: "p1", Scope: "bucket:out.c-b:write"},
			BucketWrite, Resource{Kind: "table", Project: "p1", Bucket: "out.c-b"}, 403},
		{"component scope runs it", cmp, ConfigRun, Resource{Kind: "config", Project: "p1", Component: "ex"}, 200},
		{"component scope: not another", cmp, ConfigRun, Resource{Kind: "config", Project: "p1", Component: "wr"}, 403},
		{"component scope: storage untouched", cmp, BucketRead, Resource{Kind: "table", Project: "p1", Bucket: "in.c-a"}, 200},
	} {
		if got := status(Can(c.p, c.a, c.r)); got != c.want {
			t.Errorf("%s: %d, want %d (%v)", c.name, got, c.want, Can(c.p, c.a, c.r))
		}
	}
}

func TestUnknownRoleAndActionAreRefused(t *testing.T) {
	if got := status(Can(auth.Principal{Role: "root", Project: "p1"}, JobRead, Resource{Project: "p1"})); got != 403 {
		t.Errorf("unknown role: %d, want 403", got)
	}
	if got := status(Can(auth.Principal{Role: auth.RoleAdmin}, Action("job.teleport"), Resource{})); got != 403 {
		t.Errorf("unknown action: %d, want 403", got)
	}
	if !errors.Is(Can(auth.Principal{Role: "root"}, JobRead, Resource{}), ErrDenied) {
		t.Error("a refusal does not match ErrDenied")
	}
}

func TestVisible(t *testing.T) {
	if !Visible(auth.Principal{Role: auth.RoleAdmin, Project: "p1"}, "p2") || Visible(auth.Principal{Role: auth.RoleMember, Project: "p1"}, "p2") ||
		!Visible(auth.Principal{Role: auth.RoleReadOnly, Project: "p1"}, "p1") {
		t.Fatal("Visible: an admin sees every project, others only their own")
	}
}
