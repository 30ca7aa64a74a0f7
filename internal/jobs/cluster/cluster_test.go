package cluster

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func spec() Spec {
	return Spec{Name: "ResNet50_3stage", Folds: 5, Fold: []string{"imet", "cv"}, Collect: []string{"imet", "cv", "--collect"},
		Image: "imet:1", Claim: "data", WorkDir: "/work", MountAt: "/work"}
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{"ResNet50_3stage": "resnet50-3stage", "--x--": "x", "": "imet",
		strings.Repeat("a", 70): strings.Repeat("a", 63)} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
	}
}

// The manifests pass Validate, and Validate refuses what the API refuses.
func TestValidate(t *testing.T) {
	jobs, err := KubernetesJobs(spec())
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if err := j.Validate(); err != nil {
			t.Fatalf("%s: %v", j.Metadata.Name, err)
		}
	}
	for name, breakIt := range map[string]func(j *Job){
		"kind":               func(j *Job) { j.Kind = "CronJob" },
		"name":               func(j *Job) { j.Metadata.Name = "Imet_CV" },
		"completions":        func(j *Job) { j.Spec.Completions = nil },
		"restartPolicy":      func(j *Job) { j.Spec.Template.Spec.RestartPolicy = "OnFailure" },
		"restartPolicy word": func(j *Job) { j.Spec.Template.Spec.RestartPolicy = "Always" },
		"mode":               func(j *Job) { j.Spec.CompletionMode = "indexed" },
		"per index":          func(j *Job) { j.Spec.CompletionMode = "" },
		"mount":              func(j *Job) { j.Spec.Template.Spec.Volumes = nil },
		"command":            func(j *Job) { j.Spec.Template.Spec.Containers[0].Command = nil },
		"rule": func(j *Job) {
			j.Spec.PodFailurePolicy.Rules[0].OnExitCodes = &ExitCodesSelect{Operator: "In", Values: []int{1}}
		},
		"exit 0": func(j *Job) { j.Spec.PodFailurePolicy.Rules[1].OnExitCodes.Values = []int{0} },
	} {
		j := jobs[0]
		b, _ := yaml.Marshal(j)
		var c Job
		if err := yaml.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		breakIt(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: a broken Job passed", name)
		}
	}
}

func TestSlurmQuotes(t *testing.T) {
	s := spec()
	s.Fold = []string{"imet", "cv", "--config", "my run.yaml"}
	b, err := Slurm(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "imet cv --config 'my run.yaml' &") {
		t.Errorf("a path with a space is not quoted:\n%s", b)
	}
}
