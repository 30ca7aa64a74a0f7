// Package cluster writes what hands the folds of a cross-validation run to
// a cluster scheduler, one fold per task on shared storage: a Kubernetes
// Indexed Job (batch/v1, completionMode Indexed: each pod gets
// JOB_COMPLETION_INDEX, and a pod that fails or is evicted is replaced by
// one with the same index) followed by a Job that collects the folds, or a
// Slurm array script (each task gets SLURM_ARRAY_TASK_ID) that requeues a
// task its time limit stopped.
//
// A fold task runs `imet cv --fold-from-env`: the command reads its fold
// from the variable, resumes the fold from its newest checkpoint when one
// exists, and exits with ExitIncomplete when it stopped before the end
// (time budget, SIGTERM on eviction), so that the scheduler runs it again
// instead of counting it done.
package cluster

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// ExitIncomplete is the exit status of a fold task that stopped cleanly
// before its fold was done (EX_TEMPFAIL): run it again to continue.
const ExitIncomplete = 75

// Spec describes the cluster run.
type Spec struct {
	// Name names the jobs (made a DNS-1123 label for Kubernetes).
	Name string
	// Folds is the number of fold tasks (indices 0..Folds-1);
	// Parallelism how many run at once (0: all).
	Folds, Parallelism int
	// Fold is the command of each fold task, Collect the command that
	// combines them; both run in WorkDir.
	Fold, Collect []string
	WorkDir       string
	// Kubernetes: the container image, the PersistentVolumeClaim of the
	// shared storage and where it is mounted, the retries per index.
	Image           string
	Claim, MountAt  string
	BackoffPerIndex int
	// Per task: GPUs, CPU cores and memory (Kubernetes quantities, e.g.
	// "16Gi"; Slurm takes the same numbers); zero or "": not asked for.
	GPUs, CPUs int
	Memory     string
	// Slurm: the partition ("": the default) and the time limit of a
	// task (e.g. "8:00:00"; "": the partition's).
	Partition, TimeLimit string
}

// Job is the subset of Kubernetes' batch/v1 Job that the manifests use,
// with the API's field names; Validate checks what the API requires.
type Job struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       JobSpec  `yaml:"spec"`
}

// Metadata is an object's ObjectMeta (the fields used).
type Metadata struct {
	Name   string            `yaml:"name,omitempty"`
	Labels map[string]string `yaml:"labels,omitempty"`
}

// JobSpec is batch/v1 JobSpec (the fields used).
type JobSpec struct {
	CompletionMode       string            `yaml:"completionMode,omitempty"`
	Completions          *int              `yaml:"completions,omitempty"`
	Parallelism          *int              `yaml:"parallelism,omitempty"`
	BackoffLimit         *int              `yaml:"backoffLimit,omitempty"`
	BackoffLimitPerIndex *int              `yaml:"backoffLimitPerIndex,omitempty"`
	PodFailurePolicy     *PodFailurePolicy `yaml:"podFailurePolicy,omitempty"`
	Template             PodTemplate       `yaml:"template"`
}

// PodFailurePolicy is batch/v1 PodFailurePolicy.
type PodFailurePolicy struct {
	Rules []PodFailurePolicyRule `yaml:"rules"`
}

// PodFailurePolicyRule is one rule: an action on exit codes or on pod
// conditions (exactly one of the two).
type PodFailurePolicyRule struct {
	Action          string               `yaml:"action"`
	OnExitCodes     *ExitCodesSelect     `yaml:"onExitCodes,omitempty"`
	OnPodConditions []PodConditionSelect `yaml:"onPodConditions,omitempty"`
}

// ExitCodesSelect is batch/v1 PodFailurePolicyOnExitCodesRequirement.
type ExitCodesSelect struct {
	ContainerName string `yaml:"containerName,omitempty"`
	Operator      string `yaml:"operator"`
	Values        []int  `yaml:"values"`
}

// PodConditionSelect is batch/v1 PodFailurePolicyOnPodConditionsPattern.
type PodConditionSelect struct {
	Type   string `yaml:"type"`
	Status string `yaml:"status"`
}

// PodTemplate is core/v1 PodTemplateSpec.
type PodTemplate struct {
	Metadata Metadata `yaml:"metadata,omitempty"`
	Spec     PodSpec  `yaml:"spec"`
}

// PodSpec is core/v1 PodSpec (the fields used).
type PodSpec struct {
	RestartPolicy                 string      `yaml:"restartPolicy"`
	TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds,omitempty"`
	Containers                    []Container `yaml:"containers"`
	Volumes                       []Volume    `yaml:"volumes,omitempty"`
}

// Container is core/v1 Container (the fields used).
type Container struct {
	Name         string        `yaml:"name"`
	Image        string        `yaml:"image"`
	Command      []string      `yaml:"command"`
	WorkingDir   string        `yaml:"workingDir,omitempty"`
	Resources    *Resources    `yaml:"resources,omitempty"`
	VolumeMounts []VolumeMount `yaml:"volumeMounts,omitempty"`
}

// Resources is core/v1 ResourceRequirements.
type Resources struct {
	Limits   map[string]string `yaml:"limits,omitempty"`
	Requests map[string]string `yaml:"requests,omitempty"`
}

// VolumeMount is core/v1 VolumeMount.
type VolumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
}

// Volume is core/v1 Volume with a PersistentVolumeClaim source.
type Volume struct {
	Name                  string    `yaml:"name"`
	PersistentVolumeClaim *ClaimRef `yaml:"persistentVolumeClaim,omitempty"`
}

// ClaimRef is core/v1 PersistentVolumeClaimVolumeSource.
type ClaimRef struct {
	ClaimName string `yaml:"claimName"`
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Label makes s a DNS-1123 label (lower case, digits and '-', at most 63
// characters), as Kubernetes object names must be.
func Label(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	if out == "" {
		out = "imet"
	}
	return out
}

func ptr(n int) *int { return &n }

// KubernetesJobs returns the two Jobs of a run: the Indexed Job of the
// folds and the one that collects them.
func KubernetesJobs(s Spec) ([]Job, error) {
	if s.Folds < 1 {
		return nil, fmt.Errorf("cluster: %d folds", s.Folds)
	}
	if s.Image == "" {
		return nil, fmt.Errorf("cluster: no container image (--image)")
	}
	name := Label("imet-cv-" + s.Name)
	if len(name) > 55 { // room for "-collect" and the pods' suffixes
		name = strings.TrimRight(name[:55], "-")
	}
	par := s.Parallelism
	if par <= 0 || par > s.Folds {
		par = s.Folds
	}
	backoff := s.BackoffPerIndex
	if backoff <= 0 {
		backoff = 3
	}
	labels := map[string]string{"app.kubernetes.io/name": "imet", "imet/run": Label(s.Name)}
	pod := func(role string, command []string) PodTemplate {
		c := Container{Name: role, Image: s.Image, Command: command, WorkingDir: s.WorkDir}
		res := &Resources{Limits: map[string]string{}, Requests: map[string]string{}}
		if s.GPUs > 0 && role == "fold" {
			res.Limits["nvidia.com/gpu"] = strconv.Itoa(s.GPUs)
		}
		if s.CPUs > 0 {
			res.Requests["cpu"] = strconv.Itoa(s.CPUs)
		}
		if s.Memory != "" {
			res.Requests["memory"] = s.Memory
			res.Limits["memory"] = s.Memory
		}
		if len(res.Limits)+len(res.Requests) > 0 {
			if len(res.Limits) == 0 {
				res.Limits = nil
			}
			if len(res.Requests) == 0 {
				res.Requests = nil
			}
			c.Resources = res
		}
		ps := PodSpec{RestartPolicy: "Never", TerminationGracePeriodSeconds: ptr(120), Containers: []Container{c}}
		if s.Claim != "" {
			mount := s.MountAt
			if mount == "" {
				mount = "/work"
			}
			ps.Containers[0].VolumeMounts = []VolumeMount{{Name: "shared", MountPath: mount}}
			ps.Volumes = []Volume{{Name: "shared", PersistentVolumeClaim: &ClaimRef{ClaimName: s.Claim}}}
		}
		l := map[string]string{"imet/role": role}
		for k, v := range labels {
			l[k] = v
		}
		return PodTemplate{Metadata: Metadata{Labels: l}, Spec: ps}
	}
	folds := Job{APIVersion: "batch/v1", Kind: "Job", Metadata: Metadata{Name: name, Labels: labels},
		Spec: JobSpec{CompletionMode: "Indexed", Completions: ptr(s.Folds), Parallelism: ptr(par),
			BackoffLimitPerIndex: ptr(backoff),
			// An eviction or preemption (the pod gets SIGTERM, imet
			// checkpoints) is not the fold's fault, nor is a stop by
			// the time budget (exit ExitIncomplete): neither counts
			// against the retries, and the replacement resumes.
			PodFailurePolicy: &PodFailurePolicy{Rules: []PodFailurePolicyRule{
				{Action: "Ignore", OnPodConditions: []PodConditionSelect{{Type: "DisruptionTarget", Status: "True"}}},
				{Action: "Ignore", OnExitCodes: &ExitCodesSelect{ContainerName: "fold", Operator: "In", Values: []int{ExitIncomplete}}},
			}},
			Template: pod("fold", s.Fold)}}
	collect := Job{APIVersion: "batch/v1", Kind: "Job", Metadata: Metadata{Name: name + "-collect", Labels: labels},
		Spec: JobSpec{Completions: ptr(1), Parallelism: ptr(1), BackoffLimit: ptr(backoff), Template: pod("collect", s.Collect)}}
	return []Job{folds, collect}, nil
}

// Kubernetes is the manifest of KubernetesJobs: YAML documents for
// kubectl apply -f.
func Kubernetes(s Spec) ([]byte, error) {
	jobs, err := KubernetesJobs(s)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# imet cv on Kubernetes: one pod per fold (JOB_COMPLETION_INDEX), on the shared volume %q.\n", s.Claim)
	b.WriteString("# A failed or evicted pod is replaced with the same index and resumes its fold from its\n")
	b.WriteString("# newest checkpoint; the collect Job waits for every fold, then writes the submission.\n")
	b.WriteString("#   kubectl apply -f THIS_FILE\n")
	for i, j := range jobs {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := yaml.MarshalWithOptions(j, yaml.IndentSequence(true))
		if err != nil {
			return nil, err
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// Validate checks a Job against what batch/v1 requires of the fields used:
// the API version and kind, a DNS-1123 name, an Indexed Job's
// completions, backoffLimitPerIndex only with Indexed completion and
// restartPolicy Never, a pod failure policy only with restartPolicy Never,
// at least one container with a name, an image and a command, and every
// volume mount naming a volume of the pod.
func (j *Job) Validate() error {
	switch {
	case j.APIVersion != "batch/v1" || j.Kind != "Job":
		return fmt.Errorf("apiVersion/kind %s/%s, want batch/v1 Job", j.APIVersion, j.Kind)
	case len(j.Metadata.Name) > 63 || !dnsLabel.MatchString(j.Metadata.Name): // required for a Job applied by name
		return fmt.Errorf("metadata.name %q is not a DNS-1123 label", j.Metadata.Name)
	}
	sp := &j.Spec
	switch sp.CompletionMode {
	case "", "NonIndexed":
		if sp.BackoffLimitPerIndex != nil {
			return fmt.Errorf("spec.backoffLimitPerIndex needs completionMode Indexed")
		}
	case "Indexed":
		if sp.Completions == nil || *sp.Completions < 1 {
			return fmt.Errorf("spec.completions: an Indexed Job needs at least one")
		}
	default:
		return fmt.Errorf("spec.completionMode %q: want NonIndexed or Indexed", sp.CompletionMode)
	}
	for _, n := range []*int{sp.Completions, sp.Parallelism, sp.BackoffLimit, sp.BackoffLimitPerIndex} {
		if n != nil && *n < 0 {
			return fmt.Errorf("spec: negative count %d", *n)
		}
	}
	ps := &sp.Template.Spec
	switch ps.RestartPolicy {
	case "Never":
	case "OnFailure":
		if sp.BackoffLimitPerIndex != nil || sp.PodFailurePolicy != nil {
			return fmt.Errorf("spec.template.spec.restartPolicy must be Never with backoffLimitPerIndex or podFailurePolicy")
		}
	default:
		return fmt.Errorf("spec.template.spec.restartPolicy %q: a Job's must be Never or OnFailure", ps.RestartPolicy)
	}
	if p := sp.PodFailurePolicy; p != nil {
		for i, r := range p.Rules {
			switch r.Action {
			case "Ignore", "FailJob", "Count", "FailIndex":
			default:
				return fmt.Errorf("spec.podFailurePolicy.rules[%d].action %q", i, r.Action)
			}
			if r.Action == "FailIndex" && sp.BackoffLimitPerIndex == nil {
				return fmt.Errorf("spec.podFailurePolicy.rules[%d]: FailIndex needs backoffLimitPerIndex", i)
			}
			if (r.OnExitCodes == nil) == (len(r.OnPodConditions) == 0) {
				return fmt.Errorf("spec.podFailurePolicy.rules[%d]: needs exactly one of onExitCodes and onPodConditions", i)
			}
			if e := r.OnExitCodes; e != nil {
				if e.Operator != "In" && e.Operator != "NotIn" || len(e.Values) == 0 {
					return fmt.Errorf("spec.podFailurePolicy.rules[%d].onExitCodes: operator In or NotIn and at least one value", i)
				}
				for _, v := range e.Values {
					if v == 0 && e.Operator == "In" {
						return fmt.Errorf("spec.podFailurePolicy.rules[%d].onExitCodes: 0 is not allowed with In", i)
					}
				}
			}
		}
	}
	if len(ps.Containers) == 0 {
		return fmt.Errorf("spec.template.spec.containers: none")
	}
	vols := map[string]bool{}
	for _, v := range ps.Volumes {
		if !dnsLabel.MatchString(v.Name) {
			return fmt.Errorf("volume name %q is not a DNS-1123 label", v.Name)
		}
		if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName == "" {
			return fmt.Errorf("volume %s: no persistentVolumeClaim.claimName", v.Name)
		}
		vols[v.Name] = true
	}
	for i, c := range ps.Containers {
		if !dnsLabel.MatchString(c.Name) || c.Image == "" || len(c.Command) == 0 {
			return fmt.Errorf("containers[%d]: needs a DNS-1123 name, an image and a command", i)
		}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				return fmt.Errorf("containers[%d]: volumeMount %q names no volume of the pod", i, m.Name)
			}
			if !strings.HasPrefix(m.MountPath, "/") {
				return fmt.Errorf("containers[%d]: mountPath %q is not absolute", i, m.MountPath)
			}
		}
	}
	return nil
}

// Slurm is an sbatch script of an array job, one task per fold; a task
// stopped before its fold was done (ExitIncomplete: the time limit's
// SIGTERM, sent two minutes early by --signal) requeues itself, and the
// requeued task resumes the fold. The collect step is a dependent job,
// as the script's header says.
func Slurm(s Spec) ([]byte, error) {
	if s.Folds < 1 {
		return nil, fmt.Errorf("cluster: %d folds", s.Folds)
	}
	q := func(args []string) string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = shellQuote(a)
		}
		return strings.Join(out, " ")
	}
	name := Label("imet-cv-" + s.Name)
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/bash\n")
	fmt.Fprintf(&b, "# imet cv on Slurm: one array task per fold (SLURM_ARRAY_TASK_ID), on shared storage.\n")
	fmt.Fprintf(&b, "# Submit the folds, then the step that combines them once all succeeded:\n")
	fmt.Fprintf(&b, "#   jid=$(sbatch --parsable THIS_FILE)\n")
	fmt.Fprintf(&b, "#   sbatch --dependency=afterok:$jid --job-name=%s-collect --wrap=%s\n", name, shellQuote(q(s.Collect)))
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", name)
	arr := fmt.Sprintf("0-%d", s.Folds-1)
	if s.Parallelism > 0 && s.Parallelism < s.Folds {
		arr += fmt.Sprintf("%%%d", s.Parallelism)
	}
	fmt.Fprintf(&b, "#SBATCH --array=%s\n", arr)
	fmt.Fprintf(&b, "#SBATCH --ntasks=1\n")
	if s.CPUs > 0 {
		fmt.Fprintf(&b, "#SBATCH --cpus-per-task=%d\n", s.CPUs)
	}
	if s.GPUs > 0 {
		fmt.Fprintf(&b, "#SBATCH --gres=gpu:%d\n", s.GPUs)
	}
	if s.Memory != "" {
		fmt.Fprintf(&b, "#SBATCH --mem=%s\n", slurmMem(s.Memory))
	}
	if s.Partition != "" {
		fmt.Fprintf(&b, "#SBATCH --partition=%s\n", s.Partition)
	}
	if s.TimeLimit != "" {
		fmt.Fprintf(&b, "#SBATCH --time=%s\n", s.TimeLimit)
	}
	fmt.Fprintf(&b, "#SBATCH --requeue\n")
	fmt.Fprintf(&b, "#SBATCH --signal=B:TERM@120\n")
	fmt.Fprintf(&b, "#SBATCH --output=%s-%%A_%%a.log\n", name)
	if s.WorkDir != "" {
		fmt.Fprintf(&b, "#SBATCH --chdir=%s\n", s.WorkDir)
	}
	fmt.Fprintf(&b, "set -u\n")
	fmt.Fprintf(&b, "# imet reads its fold from SLURM_ARRAY_TASK_ID and resumes it from its newest checkpoint.\n")
	fmt.Fprintf(&b, "%s &\n", q(s.Fold))
	fmt.Fprintf(&b, "pid=$!\n")
	fmt.Fprintf(&b, "trap 'kill -TERM $pid' TERM\n")
	fmt.Fprintf(&b, "wait $pid; rc=$?\n")
	fmt.Fprintf(&b, "# a signal interrupts the first wait: wait again for imet's checkpoint and exit\n")
	fmt.Fprintf(&b, "if kill -0 $pid 2>/dev/null; then wait $pid; rc=$?; fi\n")
	fmt.Fprintf(&b, "if [ \"$rc\" -eq %d ]; then\n", ExitIncomplete)
	fmt.Fprintf(&b, "  echo \"fold $SLURM_ARRAY_TASK_ID stopped before the end: requeued, it resumes from its checkpoint\"\n")
	fmt.Fprintf(&b, "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n")
	fmt.Fprintf(&b, "fi\n")
	fmt.Fprintf(&b, "exit $rc\n")
	return []byte(b.String()), nil
}

// slurmMem writes a Kubernetes memory quantity as Slurm's --mem does
// (16Gi -> 16G, 512Mi -> 512M); anything else passes as it is.
func slurmMem(m string) string {
	for _, suf := range []string{"Gi", "Mi", "Ti"} {
		if strings.HasSuffix(m, suf) {
			return strings.TrimSuffix(m, "i")
		}
	}
	return m
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes a word for sh when it needs it.
func shellQuote(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
