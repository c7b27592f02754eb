package helm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// render renders the chart with values over its defaults, as helm template
// does, and returns the objects by kind (one each at most) or the error.
func render(t *testing.T, values string) (map[string][]byte, error) {
	t.Helper()
	ch, err := loader.Load("assertd")
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "assertd", Namespace: "monitoring", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	objs := map[string][]byte{}
	for name, text := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for doc := range strings.SplitSeq(text, "\n---") {
			var head struct{ Kind, APIVersion string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s does not parse: %v\n%s", name, err, doc)
			}
			if head.Kind == "" {
				continue // a template that renders nothing with these values
			}
			if _, dup := objs[head.Kind]; dup {
				t.Fatalf("two objects of kind %s", head.Kind)
			}
			objs[head.Kind] = []byte(doc)
		}
	}
	return objs, nil
}

func kinds(objs map[string][]byte) []string {
	var out []string
	for k := range objs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func decode[T any](t *testing.T, objs map[string][]byte, kind string) *T {
	t.Helper()
	var v T
	if err := yaml.UnmarshalStrict(objs[kind], &v); err != nil {
		t.Fatalf("%s: %v\n%s", kind, err, objs[kind])
	}
	return &v
}

// dockerUID is the uid the image runs as (the Dockerfile's USER).
func dockerUID(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Dockerfile has no numeric USER")
	}
	var uid int64
	for _, c := range m[1] {
		uid = uid*10 + int64(c-'0')
	}
	return uid
}

// checkPod checks what both workloads' pods must have.
func checkPod(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != dockerUID(t) ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want non-root as the image's uid %d, seccomp RuntimeDefault", psc, dockerUID(t))
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil ||
		!*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext %+v", sc)
	}
	for name, p := range map[string]*corev1.Probe{"/-/healthy": c.LivenessProbe, "/-/ready": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "http" {
			t.Errorf("probe %s: %+v", name, p)
		}
	}
	for _, want := range []string{"run", "--config.file=/etc/assertd/assertd.yaml", "--storage.path=/var/lib/assertd", "--web.listen-address=:8080", "--log.format=json"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %v lack %s", c.Args, want)
		}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it does not use")
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if mounts["/etc/assertd"] != "config" || mounts["/var/lib/assertd"] != "data" || mounts["/tmp"] == "" {
		t.Errorf("mounts %v", mounts)
	}
	// Secrets come by reference only.
	for _, e := range c.Env {
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s is not a secretKeyRef", e.Name)
		}
	}
}

// checkConfig writes the ConfigMap's files into a directory and runs
// assertd check on them: what the pod loads is valid.
func checkConfig(t *testing.T, objs map[string][]byte) map[string]any {
	t.Helper()
	cm := decode[corev1.ConfigMap](t, objs, "ConfigMap")
	dir := t.TempDir()
	for name, text := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command("go", "run", "./cmd/assertd", "check", "-c", filepath.Join(dir, "assertd.yaml"))
	cmd.Dir = "../.."
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("assertd check on the rendered ConfigMap: %v\n%s\n%s", err, out.String(), cm.Data["assertd.yaml"])
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["assertd.yaml"]), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDefaultsRenderAStatefulSetWithSQLite(t *testing.T) {
	objs, err := render(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(objs); !slices.Equal(got, []string{"ConfigMap", "Service", "StatefulSet"}) {
		t.Fatalf("kinds %v", got)
	}
	ss := decode[appsv1.StatefulSet](t, objs, "StatefulSet")
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1 {
		t.Errorf("replicas %v", ss.Spec.Replicas)
	}
	if len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "data" ||
		ss.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String() != "10Gi" {
		t.Errorf("volumeClaimTemplates %+v", ss.Spec.VolumeClaimTemplates)
	}
	checkPod(t, ss.Spec.Template.Spec)
	cfg := checkConfig(t, objs)
	if files, _ := cfg["files"].([]any); len(files) != 1 || files[0] != "asserts.yaml" {
		t.Errorf("files %v", cfg["files"])
	}
	if _, ok := cfg["store"]; ok {
		t.Errorf("store %v set with SQLite (the default)", cfg["store"])
	}
}

func TestPostgresRendersADeployment(t *testing.T) {
	objs, err := render(t, `
store: {driver: postgres, postgres: {dsnSecret: {name: pg, key: url}}}
serviceMonitor: {enabled: true}
externalURL: https://assertd.example.com
envFromSecrets: [assertd-channels]
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(objs); !slices.Equal(got, []string{"ConfigMap", "Deployment", "Service", "ServiceMonitor"}) {
		t.Fatalf("kinds %v", got)
	}
	d := decode[appsv1.Deployment](t, objs, "Deployment")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %v, strategy %v: want one, recreated (never two at once)", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	checkPod(t, pod)
	c := pod.Containers[0]
	if !slices.Contains(c.Args, "--web.external-url=https://assertd.example.com") {
		t.Errorf("args %v", c.Args)
	}
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "ASSERTD_PG_DSN" })
	if i < 0 || c.Env[i].ValueFrom.SecretKeyRef.Name != "pg" || c.Env[i].ValueFrom.SecretKeyRef.Key != "url" {
		t.Errorf("env %+v: want ASSERTD_PG_DSN from secret pg, key url", c.Env)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "assertd-channels" {
		t.Errorf("envFrom %+v", c.EnvFrom)
	}
	cfg := checkConfig(t, objs)
	if st, _ := cfg["store"].(map[string]any); st["driver"] != "postgres" || st["dsn_env"] != "ASSERTD_PG_DSN" {
		t.Errorf("store %v", cfg["store"])
	}
	var sm struct {
		Spec struct {
			Endpoints []struct {
				Port, Path    string
				Authorization struct {
					Credentials struct{ Name, Key string }
				}
			}
		}
	}
	if err := yaml.Unmarshal(objs["ServiceMonitor"], &sm); err != nil {
		t.Fatal(err)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Port != "http" ||
		sm.Spec.Endpoints[0].Authorization.Credentials.Name != "assertd" {
		t.Errorf("ServiceMonitor endpoints %+v", sm.Spec.Endpoints)
	}
}

// Several replicas on PostgreSQL: one Deployment of three, rolled one pod
// at a time (never more than three at once); every pod reads the same DSN.
func TestPostgresReplicas(t *testing.T) {
	objs, err := render(t, "store: {driver: postgres, postgres: {dsnSecret: {name: pg, key: url}}}\nreplicas: 3\n")
	if err != nil {
		t.Fatal(err)
	}
	d := decode[appsv1.Deployment](t, objs, "Deployment")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxSurge.IntValue() != 0 || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Errorf("replicas %v, strategy %+v", d.Spec.Replicas, d.Spec.Strategy)
	}
	checkPod(t, d.Spec.Template.Spec)
}

// Values that cannot work are refused with what to write instead.
func TestChartRefuses(t *testing.T) {
	for values, want := range map[string]string{
		"replicas: 2":            "replicas: 2 with store.driver sqlite: SQLite is one process's file",
		"replicas: 0":            "replicas: write 1",
		"store: {driver: mysql}": `store.driver "mysql": write sqlite or postgres`,
	} {
		_, err := render(t, values)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", values, err, want)
		}
	}
}
