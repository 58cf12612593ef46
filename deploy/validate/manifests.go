package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest document.
type Object struct {
	Source string // file:document
	Kind   string
	Name   string
	Obj    any // *appsv1.Deployment, *corev1.Service, …
}

// kinds are the resources the manifests may hold, by apiVersion and kind, each decoded
// into its typed API object. Anything else is an error: a typo in a kind or an old API
// version must not pass unchecked.
var kinds = map[string]func() any{
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
}

// Decode splits a YAML stream into documents and decodes each strictly into its API type:
// unknown or duplicate fields, wrong types and malformed quantities are errors. Documents
// holding only comments are skipped.
func Decode(source string, r io.Reader) ([]Object, error) {
	rd := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []Object
	for i := 0; ; i++ {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		at := fmt.Sprintf("%s:%d", source, i)
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		mk, ok := kinds[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: unexpected apiVersion %q kind %q (known: %s)", at, tm.APIVersion, tm.Kind, strings.Join(known(), ", "))
		}
		obj := mk()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", at, tm.Kind, err)
		}
		name := obj.(metav1.Object).GetName()
		if name == "" {
			return nil, fmt.Errorf("%s (%s): metadata.name is required", at, tm.Kind)
		}
		out = append(out, Object{Source: at, Kind: tm.Kind, Name: name, Obj: obj})
	}
}

func known() []string {
	var k []string
	for n := range kinds {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(doc) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			b.Write(line)
		}
	}
	return b.Bytes()
}

// Load decodes every *.yaml file in dir; two objects of one kind and name are an error.
func Load(dir string) ([]Object, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no manifests in %s (%v)", dir, err)
	}
	var all []Object
	seen := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		objs, err := Decode(filepath.Base(f), bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			id := o.Kind + "/" + o.Name
			if prev, dup := seen[id]; dup {
				return nil, fmt.Errorf("%s: %s is also defined at %s", o.Source, id, prev)
			}
			seen[id] = o.Source
		}
		all = append(all, objs...)
	}
	return all, nil
}

// Find returns the object of kind and name, or nil.
func Find[T any](objs []Object, kind, name string) *T {
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			if v, ok := o.Obj.(*T); ok {
				return v
			}
		}
	}
	return nil
}

// Dockerfile is the part of a Dockerfile the checks read: its stages, in order.
type Dockerfile struct {
	Stages []Stage
}

// Stage is one FROM and the instructions after it.
type Stage struct {
	From, Name   string
	Instructions []Instruction
}

// Instruction is one instruction, continuation lines joined.
type Instruction struct {
	Cmd  string // upper case: RUN, COPY, USER, …
	Args string
}

// All returns the stage's instructions of cmd.
func (s Stage) All(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// ParseDockerfile reads instructions (comments and blank lines dropped, lines ending in a
// backslash joined) and groups them by stage. Instructions before the first FROM other
// than ARG are an error, as for docker build.
func ParseDockerfile(r io.Reader) (Dockerfile, error) {
	var d Dockerfile
	sc := bufio.NewScanner(r)
	var pending strings.Builder
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		full := pending.String()
		pending.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		in := Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		switch {
		case in.Cmd == "FROM":
			f := strings.Fields(in.Args)
			st := Stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			d.Stages = append(d.Stages, st)
		case len(d.Stages) == 0 && in.Cmd != "ARG":
			return d, fmt.Errorf("%s before the first FROM", in.Cmd)
		case len(d.Stages) > 0:
			st := &d.Stages[len(d.Stages)-1]
			st.Instructions = append(st.Instructions, in)
		}
	}
	if pending.Len() > 0 {
		return d, errors.New("the last line ends in a backslash")
	}
	return d, sc.Err()
}
