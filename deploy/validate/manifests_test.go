package validate

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gavel-gw/gavel/engine/app"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/config"
)

const (
	manifestDir = "../kubernetes"
	dockerfile  = "../docker/Dockerfile"
	// The names the manifests use for gavel's objects.
	gavelName    = "gavel"
	gavelConfig  = "gavel-config"
	configKey    = "gavel.yaml"
	redisService = "gavel-redis"
)

// deployment is everything the invariants read, loaded once per test.
type deployment struct {
	objs      []Object
	gavel     *appsv1.Deployment
	container corev1.Container
	cfg       *config.Config
	cfgPath   string // where the container reads gavel.yaml (its --config)
}

func load(t *testing.T) *deployment {
	t.Helper()
	objs, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	d := &deployment{objs: objs, gavel: Find[appsv1.Deployment](objs, "Deployment", gavelName)}
	if d.gavel == nil {
		t.Fatalf("no Deployment %q in %s", gavelName, manifestDir)
	}
	cs := d.gavel.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment %s: want one container, got %d", gavelName, len(cs))
	}
	d.container = cs[0]
	args := d.container.Args
	i := slices.Index(args, "--config")
	if len(args) == 0 || args[0] != "serve" || i < 0 || i+1 >= len(args) {
		t.Fatalf("container args %q: want serve --config FILE", args)
	}
	d.cfgPath = args[i+1]
	d.cfg = d.parseConfig(t)
	return d
}

// env is the container's environment as gavel would see it: every variable the Deployment
// sets, with a stand-in value (each must come from an existing Secret key or be literal).
func (d *deployment) env(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range d.container.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			env[e.Name] = d.secretValue(t, ref.Name, ref.Key)
		default:
			t.Fatalf("env %s: only literal values and secretKeyRef are expected", e.Name)
		}
	}
	if len(d.container.EnvFrom) > 0 {
		t.Fatal("envFrom hides which variables gavel.yaml gets: list them in env")
	}
	return env
}

// secretValue is one key of a Secret in the manifests; missing ones fail the test.
func (d *deployment) secretValue(t *testing.T, name, key string) string {
	t.Helper()
	s := Find[corev1.Secret](d.objs, "Secret", name)
	if s == nil {
		t.Fatalf("Secret %q is referenced but not defined", name)
	}
	if v, ok := s.StringData[key]; ok {
		return v
	}
	if v, ok := s.Data[key]; ok {
		return string(v)
	}
	t.Fatalf("Secret %s has no key %q", name, key)
	return ""
}

// parseConfig runs the ConfigMap's gavel.yaml through gavel's own strict parser with
// exactly the Deployment's environment, then Validate: an unknown field, a ${VAR} the pod
// does not get, or an invalid setting fails here as it would at startup.
func (d *deployment) parseConfig(t *testing.T) *config.Config {
	t.Helper()
	dir, file := path.Split(d.cfgPath)
	cm := d.configMapAt(t, path.Clean(dir), file)
	raw, ok := cm.Data[file]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, file)
	}
	env := d.env(t)
	cfg, err := config.Parse([]byte(raw), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("ConfigMap %s %s: %v", cm.Name, file, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("ConfigMap %s %s: %v", cm.Name, file, err)
	}
	return cfg
}

// mountAt is the container's volume mounted at dir (exactly), with its volume.
func (d *deployment) mountAt(t *testing.T, dir string) corev1.Volume {
	t.Helper()
	for _, m := range d.container.VolumeMounts {
		if path.Clean(m.MountPath) != dir {
			continue
		}
		for _, v := range d.gavel.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				return v
			}
		}
		t.Fatalf("volume mount %s names no volume", m.Name)
	}
	t.Fatalf("nothing is mounted at %s", dir)
	return corev1.Volume{}
}

func (d *deployment) configMapAt(t *testing.T, dir, file string) *corev1.ConfigMap {
	t.Helper()
	v := d.mountAt(t, dir)
	if v.ConfigMap == nil {
		t.Fatalf("%s is not a ConfigMap volume", dir)
	}
	cm := Find[corev1.ConfigMap](d.objs, "ConfigMap", v.ConfigMap.Name)
	if cm == nil {
		t.Fatalf("ConfigMap %q is mounted but not defined", v.ConfigMap.Name)
	}
	if cm.Name != gavelConfig {
		t.Fatalf("gavel reads %s from ConfigMap %s, want %s", file, cm.Name, gavelConfig)
	}
	return cm
}

// port resolves a probe's or Service's port (a number or a container port's name) to the
// container port number.
func containerPort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s has no port %s", c.Name, p.String())
	return 0
}

func listenPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// The manifests decode strictly; the decoder itself refuses what a cluster would.
func TestDecodeIsStrict(t *testing.T) {
	tests := []struct {
		name, doc, err string
	}{
		{"a misspelled field", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selectr: {a: b}}\n", `unknown field "selectr"`},
		{"a field twice", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x}\ndata: {b: y}\n", "already set"},
		{"a wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: three}\n", "replicas"},
		{"a malformed quantity", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: r}\n" +
			"spec: {template: {spec: {containers: [{name: c, resources: {limits: {memory: lots}}}]}}}\n", "quantities must match"},
		{"an unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", `unexpected apiVersion "v1" kind "Pod"`},
		{"an old API version", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n", "unexpected apiVersion"},
		{"no name", "apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n", "metadata.name is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode("test.yaml", strings.NewReader(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error containing %q", err, tc.err)
			}
		})
	}
	objs, err := Decode("ok.yaml", strings.NewReader("# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"))
	if err != nil || len(objs) != 1 || objs[0].Name != "c" {
		t.Fatalf("a valid stream: %v %+v", err, objs)
	}
}

func TestManifests(t *testing.T) {
	d := load(t)
	c := d.container
	pod := d.gavel.Spec.Template

	t.Run("probes ask gavel's endpoints on its listen port", func(t *testing.T) {
		listen := listenPort(t, d.cfg.Listen)
		probes := []struct {
			name string
			p    *corev1.Probe
			path string
		}{
			{"readinessProbe", c.ReadinessProbe, "/readyz"},
			{"livenessProbe", c.LivenessProbe, "/healthz"},
			{"startupProbe", c.StartupProbe, "/healthz"},
		}
		for _, pr := range probes {
			if pr.p == nil || pr.p.HTTPGet == nil {
				t.Errorf("%s: want an httpGet probe of %s", pr.name, pr.path)
				continue
			}
			if pr.p.HTTPGet.Path != pr.path {
				t.Errorf("%s asks %s, want %s", pr.name, pr.p.HTTPGet.Path, pr.path)
			}
			if got := containerPort(t, c, pr.p.HTTPGet.Port); got != listen {
				t.Errorf("%s asks port %d; gavel listens on %d (%s)", pr.name, got, listen, d.cfg.Listen)
			}
		}
		if host, _, _ := net.SplitHostPort(d.cfg.Listen); config.IsLoopback(d.cfg.Listen) || host == "localhost" {
			t.Errorf("listen %s is loopback: the kubelet and the Service could not reach it", d.cfg.Listen)
		}
	})

	t.Run("ports agree across gavel.yaml, the container, the Service and the Dockerfile", func(t *testing.T) {
		want := map[int32]string{listenPort(t, d.cfg.Listen): "listen"}
		if d.cfg.Metrics.Listen != "" {
			want[listenPort(t, d.cfg.Metrics.Listen)] = "metrics.listen"
		}
		for p, what := range want {
			containerPort(t, c, intstr.FromInt32(p)) // fails if missing
			_ = what
		}
		for _, cp := range c.Ports {
			if _, ok := want[cp.ContainerPort]; !ok {
				t.Errorf("container port %s (%d) is not one gavel listens on", cp.Name, cp.ContainerPort)
			}
		}
		svc := Find[corev1.Service](d.objs, "Service", gavelName)
		if svc == nil {
			t.Fatal("no Service gavel")
		}
		if !selects(svc.Spec.Selector, pod.Labels) {
			t.Errorf("Service %s selects %v; the pods are labelled %v", svc.Name, svc.Spec.Selector, pod.Labels)
		}
		listen := listenPort(t, d.cfg.Listen)
		var api bool
		for _, sp := range svc.Spec.Ports {
			target := containerPort(t, c, sp.TargetPort)
			api = api || target == listen
		}
		if !api {
			t.Errorf("Service %s does not route to gavel's listen port %d", svc.Name, listen)
		}
		df := parseDockerfile(t)
		exposed := strings.Fields(strings.Join(instructionArgs(df.Stages[len(df.Stages)-1].All("EXPOSE")), " "))
		for p := range want {
			if !slices.Contains(exposed, strconv.Itoa(int(p))) {
				t.Errorf("the Dockerfile does not EXPOSE %d (EXPOSE %v)", p, exposed)
			}
		}
	})

	t.Run("the drain fits the grace period", func(t *testing.T) {
		pre := c.Lifecycle
		if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil {
			t.Fatal("want a preStop sleep (the image has no shell for an exec hook)")
		}
		sleep := time.Duration(pre.PreStop.Sleep.Seconds) * time.Second
		if sleep < 2*time.Second {
			t.Errorf("preStop sleeps %v: too short for endpoints to drop the pod before SIGTERM", sleep)
		}
		grace := pod.Spec.TerminationGracePeriodSeconds
		if grace == nil {
			t.Fatal("terminationGracePeriodSeconds is unset (the default 30 s is below shutdown_timeout)")
		}
		exit := app.ExitBound(d.cfg)
		if need := sleep + exit; time.Duration(*grace)*time.Second < need {
			t.Fatalf("terminationGracePeriodSeconds %d < preStop %v + gavel's exit %v (shutdown_timeout %v, app.ExitBound)",
				*grace, sleep, exit, d.cfg.ShutdownTimeout)
		}
		if d.cfg.ShutdownTimeout <= 0 {
			t.Error("shutdown_timeout must be set")
		}
		t.Logf("preStop %v + exit bound %v (shutdown_timeout %v) ≤ terminationGracePeriodSeconds %ds", sleep, exit, d.cfg.ShutdownTimeout, *grace)
	})

	t.Run("every container has resources and a non-root, locked-down security context", func(t *testing.T) {
		for _, w := range workloads(d.objs) {
			ps := w.pod.Spec.SecurityContext
			if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
				t.Errorf("%s: the pod must set runAsNonRoot: true and a non-zero runAsUser", w.name)
			}
			if ps != nil && (ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
				t.Errorf("%s: want seccompProfile RuntimeDefault", w.name)
			}
			if w.pod.Spec.AutomountServiceAccountToken == nil || *w.pod.Spec.AutomountServiceAccountToken {
				t.Errorf("%s: neither gavel nor Redis talks to the Kubernetes API: automountServiceAccountToken: false", w.name)
			}
			for _, ct := range w.pod.Spec.Containers {
				at := w.name + " container " + ct.Name
				r := ct.Resources
				for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, ok := r.Requests[res]
					if !ok || req.IsZero() {
						t.Errorf("%s: no %s request", at, res)
					}
					if lim, ok := r.Limits[res]; ok && lim.Cmp(req) < 0 {
						t.Errorf("%s: %s limit %s below its request %s", at, res, lim.String(), req.String())
					}
				}
				if _, ok := r.Limits[corev1.ResourceMemory]; !ok {
					t.Errorf("%s: no memory limit (gavel sets its soft memory limit from it)", at)
				}
				sc := ct.SecurityContext
				switch {
				case sc == nil:
					t.Errorf("%s: no securityContext", at)
				case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
					t.Errorf("%s: allowPrivilegeEscalation must be false", at)
				case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
					t.Errorf("%s: readOnlyRootFilesystem must be true", at)
				case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
					t.Errorf("%s: capabilities must drop ALL", at)
				case sc.RunAsUser != nil && *sc.RunAsUser == 0:
					t.Errorf("%s: runs as root", at)
				}
				if strings.HasSuffix(ct.Image, ":latest") || !strings.Contains(ct.Image, ":") {
					t.Errorf("%s: image %q has no pinned tag", at, ct.Image)
				}
			}
		}
		df := parseDockerfile(t)
		users := df.Stages[len(df.Stages)-1].All("USER")
		if len(users) == 0 {
			t.Fatal("the Dockerfile's final stage sets no USER")
		}
		uid, _, _ := strings.Cut(users[len(users)-1].Args, ":")
		if ps := pod.Spec.SecurityContext; ps == nil || ps.RunAsUser == nil || strconv.FormatInt(*ps.RunAsUser, 10) != uid {
			t.Errorf("the image runs as user %s and the Deployment as another (or none)", uid)
		}
	})

	t.Run("what gavel reads and writes is mounted", func(t *testing.T) {
		// keys_file comes from a Secret and loads with gavel's strict keys-file reader.
		if d.cfg.KeysFile == "" {
			t.Fatal("no keys_file: gavel refuses to serve open on a non-loopback address")
		}
		dir, file := path.Split(d.cfg.KeysFile)
		v := d.mountAt(t, path.Clean(dir))
		if v.Secret == nil {
			t.Fatalf("keys_file %s is not on a Secret volume", d.cfg.KeysFile)
		}
		key := file
		for _, it := range v.Secret.Items {
			if it.Path == file {
				key = it.Key
			}
		}
		keys := filepath.Join(t.TempDir(), "keys.yaml")
		os.WriteFile(keys, []byte(d.secretValue(t, v.Secret.SecretName, key)), 0o600)
		if recs, err := auth.LoadFile(keys); err != nil || len(recs) == 0 {
			t.Errorf("the keys file in Secret %s: %v (%d keys)", v.Secret.SecretName, err, len(recs))
		}
		// With a read-only root, everything gavel writes must be on a writable volume.
		var writes []string
		if d.cfg.Ledger.Store == "file" {
			writes = append(writes, d.cfg.Ledger.Path)
		}
		if d.cfg.Bundle.PersistDir != "" && d.cfg.Bundle.URL != "" {
			writes = append(writes, d.cfg.Bundle.PersistDir)
		}
		if f := d.cfg.DecisionLog.File; f != "" {
			writes = append(writes, f)
		}
		for _, w := range writes {
			if !d.writable(w) {
				t.Errorf("gavel writes %s, which is on no writable volume", w)
			}
		}
		if !d.writable("/var/lib/gavel/x") {
			t.Error("the image's working directory /var/lib/gavel must be a writable volume")
		}
	})

	t.Run("the PodDisruptionBudget and the HPA fit the Deployment", func(t *testing.T) {
		pdb := Find[policyv1.PodDisruptionBudget](d.objs, "PodDisruptionBudget", gavelName)
		hpa := Find[autoscalingv2.HorizontalPodAutoscaler](d.objs, "HorizontalPodAutoscaler", gavelName)
		if pdb == nil || hpa == nil {
			t.Fatal("want a PodDisruptionBudget and a HorizontalPodAutoscaler named gavel")
		}
		sel, err := metav1LabelSelector(pdb)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("the PodDisruptionBudget's selector %v does not match the pods %v (%v)", pdb.Spec.Selector, pod.Labels, err)
		}
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != d.gavel.Name || ref.APIVersion != "apps/v1" {
			t.Errorf("the HPA scales %+v, not Deployment %s", ref, d.gavel.Name)
		}
		minR := int32(1)
		if hpa.Spec.MinReplicas != nil {
			minR = *hpa.Spec.MinReplicas
		}
		if minR < 2 || hpa.Spec.MaxReplicas < minR {
			t.Errorf("HPA replicas %d–%d: want at least 2 (a fleet survives losing one) and max ≥ min", minR, hpa.Spec.MaxReplicas)
		}
		if r := d.gavel.Spec.Replicas; r == nil || *r < minR {
			t.Errorf("the Deployment starts below the HPA's minimum")
		}
		// A drain must be able to proceed, one replica at a time, from the minimum.
		switch {
		case pdb.Spec.MaxUnavailable != nil:
			if v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(minR), true); err != nil || v < 1 {
				t.Errorf("PDB maxUnavailable %s lets no pod go (%v)", pdb.Spec.MaxUnavailable.String(), err)
			}
		case pdb.Spec.MinAvailable != nil:
			if v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(minR), true); err != nil || v >= int(minR) {
				t.Errorf("PDB minAvailable %s blocks every drain at %d replicas (%v)", pdb.Spec.MinAvailable.String(), minR, err)
			}
		default:
			t.Error("the PDB sets neither maxUnavailable nor minAvailable")
		}
		var cpu bool
		for _, m := range hpa.Spec.Metrics {
			cpu = cpu || (m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
				m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil)
		}
		if !cpu {
			t.Error("the HPA does not scale on CPU utilization")
		}
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Error("CPU utilization needs a CPU request on the gavel container")
		}
		if s := d.gavel.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
			t.Error("rollouts should not lower capacity: rollingUpdate.maxUnavailable: 0")
		}
	})

	t.Run("the ledger is the Redis in the manifests, with the same password", func(t *testing.T) {
		if d.cfg.Ledger.Store != "redis" {
			t.Fatalf("ledger.store is %s: replicas would each keep their own budgets", d.cfg.Ledger.Store)
		}
		if d.cfg.Ledger.FailureMode != "closed" {
			t.Errorf("ledger.failure_mode %s: a fleet that serves without its ledger can overspend", d.cfg.Ledger.FailureMode)
		}
		host, port, err := net.SplitHostPort(d.cfg.Ledger.Redis.Addr)
		if err != nil {
			t.Fatal(err)
		}
		svc := Find[corev1.Service](d.objs, "Service", host)
		if svc == nil || host != redisService {
			t.Fatalf("ledger.redis.addr %s names no Service %s", d.cfg.Ledger.Redis.Addr, redisService)
		}
		sts := Find[appsv1.StatefulSet](d.objs, "StatefulSet", redisService)
		if sts == nil {
			t.Fatal("no StatefulSet gavel-redis")
		}
		if !selects(svc.Spec.Selector, sts.Spec.Template.Labels) || sts.Spec.ServiceName != svc.Name {
			t.Errorf("Service %s does not front StatefulSet %s", svc.Name, sts.Name)
		}
		redis := sts.Spec.Template.Spec.Containers[0]
		var found bool
		for _, sp := range svc.Spec.Ports {
			if strconv.Itoa(int(sp.Port)) == port {
				found = containerPort(t, redis, sp.TargetPort) == 6379 || found
			}
		}
		if !found {
			t.Errorf("Service %s has no port %s to Redis's 6379", svc.Name, port)
		}
		args := strings.Join(redis.Args, " ")
		if !strings.Contains(args, "--appendonly yes") {
			t.Error("Redis without an append-only file loses the day's spend when it restarts")
		}
		m := regexp.MustCompile(`--requirepass \$\((\w+)\)`).FindStringSubmatch(args)
		if m == nil {
			t.Fatal("Redis sets no password from its environment (--requirepass $(VAR))")
		}
		var ref *corev1.SecretKeySelector
		for _, e := range redis.Env {
			if e.Name == m[1] && e.ValueFrom != nil {
				ref = e.ValueFrom.SecretKeyRef
			}
		}
		if ref == nil || d.secretValue(t, ref.Name, ref.Key) != string(d.cfg.Ledger.Redis.Password) || d.cfg.Ledger.Redis.Password == "" {
			t.Error("gavel's ledger.redis.password is not Redis's --requirepass secret")
		}
		if len(sts.Spec.VolumeClaimTemplates) == 0 {
			t.Error("Redis keeps its append-only file on no persistent volume")
		}
	})

	t.Run("the Dockerfile builds a static binary into a non-root image with a healthcheck", func(t *testing.T) {
		df := parseDockerfile(t)
		if len(df.Stages) < 2 {
			t.Fatalf("want a multi-stage build, got %d stage(s)", len(df.Stages))
		}
		build := strings.Join(instructionArgs(df.Stages[0].All("RUN")), "\n")
		if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "go build") || !strings.Contains(build, "./cmd/gavel") {
			t.Errorf("the build stage does not build ./cmd/gavel with CGO_ENABLED=0:\n%s", build)
		}
		final := df.Stages[len(df.Stages)-1]
		if !strings.HasPrefix(final.From, "gcr.io/distroless/static") && final.From != "scratch" {
			t.Errorf("the final stage is FROM %s, want distroless static or scratch", final.From)
		}
		for _, run := range final.All("RUN") {
			t.Errorf("RUN in the final stage (%s): it has no shell", run.Args)
		}
		hc := final.All("HEALTHCHECK")
		if len(hc) != 1 || !strings.Contains(hc[0].Args, `"healthcheck"`) || !strings.Contains(hc[0].Args, "/usr/local/bin/gavel") {
			t.Errorf("want one HEALTHCHECK running gavel healthcheck, got %v", hc)
		}
		var entry, cmd []string
		for _, in := range final.Instructions {
			switch in.Cmd {
			case "ENTRYPOINT":
				entry = execForm(t, in)
			case "CMD":
				cmd = execForm(t, in)
			}
		}
		if len(entry) != 1 || entry[0] != "/usr/local/bin/gavel" {
			t.Errorf("ENTRYPOINT %q, want [/usr/local/bin/gavel]", entry)
		}
		// The image's default command and the Deployment's args read gavel.yaml from the
		// same place, and the healthcheck reads that file too.
		if !slices.Equal(cmd, d.container.Args) {
			t.Errorf("the image's CMD %q and the Deployment's args %q differ", cmd, d.container.Args)
		}
		if len(hc) == 1 && !strings.Contains(hc[0].Args, `"`+d.cfgPath+`"`) {
			t.Errorf("HEALTHCHECK does not read %s: %s", d.cfgPath, hc[0].Args)
		}
	})
}

// workload is a pod template with a name for messages.
type workload struct {
	name string
	pod  corev1.PodTemplateSpec
}

func workloads(objs []Object) []workload {
	var out []workload
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{"Deployment " + v.Name, v.Spec.Template})
		case *appsv1.StatefulSet:
			out = append(out, workload{"StatefulSet " + v.Name, v.Spec.Template})
		}
	}
	return out
}

// writable reports whether p is on one of the container's writable volumes.
func (d *deployment) writable(p string) bool {
	for _, m := range d.container.VolumeMounts {
		if m.ReadOnly {
			continue
		}
		if rel, err := filepath.Rel(m.MountPath, p); err == nil && !strings.HasPrefix(rel, "..") {
			for _, v := range d.gavel.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && (v.EmptyDir != nil || v.PersistentVolumeClaim != nil) {
					return true
				}
			}
		}
	}
	return false
}

func selects(selector, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

func metav1LabelSelector(pdb *policyv1.PodDisruptionBudget) (labels.Selector, error) {
	if pdb.Spec.Selector == nil {
		return nil, fmt.Errorf("no selector")
	}
	if len(pdb.Spec.Selector.MatchExpressions) > 0 {
		return nil, fmt.Errorf("matchExpressions are not checked here; use matchLabels")
	}
	return labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels), nil
}

func parseDockerfile(t *testing.T) Dockerfile {
	t.Helper()
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df, err := ParseDockerfile(f)
	if err != nil || len(df.Stages) == 0 {
		t.Fatalf("%s: %v (%d stages)", dockerfile, err, len(df.Stages))
	}
	return df
}

func instructionArgs(ins []Instruction) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.Args)
	}
	return out
}

// execForm decodes an instruction's JSON (exec) form; the shell form needs a shell the
// image does not have.
func execForm(t *testing.T, in Instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.Args), &v); err != nil {
		t.Errorf("%s %s: want the exec (JSON) form: %v", in.Cmd, in.Args, err)
	}
	return v
}

func TestParseDockerfile(t *testing.T) {
	src := "ARG V=1\n# comment\nFROM golang:1 AS build\nRUN a \\\n  && b\n\nFROM scratch\nUSER 1:1\nCMD [\"x\"]\n"
	df, err := ParseDockerfile(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.Stages) != 2 || df.Stages[0].Name != "build" || df.Stages[1].From != "scratch" {
		t.Fatalf("stages: %+v", df.Stages)
	}
	if run := df.Stages[0].All("RUN"); len(run) != 1 || run[0].Args != "a  && b" {
		t.Errorf("RUN joined as %+v", run)
	}
	for _, bad := range []string{"RUN x\nFROM y\n", "FROM y\nRUN a \\\n"} {
		if _, err := ParseDockerfile(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
