package dataset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const labels2019 = "attribute_id,attribute_name\n0,culture::french\n1,culture::italian\n2,tag::men\n3,tag::women\n"

// writeSet writes a small data set; images lists the image files to create
// (relative paths such as "train/a.png").
func writeSet(t *testing.T, files map[string]string, images ...string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, img := range images {
		p := filepath.Join(dir, img)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func goodSet(t *testing.T) string {
	return writeSet(t, map[string]string{
		LabelsFile: labels2019,
		TrainFile:  "id,attribute_ids\na,0 2\nb,3 1\n",
		SampleFile: "id,attribute_ids\nt1,0 1 2\nt2,0 1 2\n",
	}, "train/a.png", "train/b.png", "test/t1.png", "test/t2.png")
}

func TestOpenGood(t *testing.T) {
	d, err := Open(goodSet(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Ext != ".png" || len(d.Train) != 2 || len(d.TestIDs) != 2 {
		t.Fatalf("got ext %q, %d train, %d test", d.Ext, len(d.Train), len(d.TestIDs))
	}
	// Labels come back as ascending column indices whatever the file order.
	if got := fmt.Sprint(d.Train[1].Labels); got != "[1 3]" {
		t.Fatalf("row b labels %s, want [1 3]", got)
	}
	if got := fmt.Sprint(d.Labels.Groups, d.Labels.GroupOf); got != "[culture tag] [0 0 1 1]" {
		t.Fatalf("groups %s", got)
	}
	if !strings.HasSuffix(d.TrainImage("a"), filepath.Join("train", "a.png")) {
		t.Fatalf("train image path %s", d.TrainImage("a"))
	}
}

func TestOpenJPG(t *testing.T) {
	dir := writeSet(t, map[string]string{
		LabelsFile: labels2019,
		TrainFile:  "id,attribute_ids\na,0\n",
		SampleFile: "id,attribute_ids\nt1,0\n",
	}, "train/a.jpg", "test/t1.jpg")
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Ext != ".jpg" {
		t.Fatalf("ext %q", d.Ext)
	}
}

// Each case breaks one thing; the first error must name the file, the line
// and the value.
func TestOpenErrors(t *testing.T) {
	cases := []struct {
		name   string
		file   string // which file to replace
		body   string
		opt    Options
		want   string
		images []string
	}{
		{"duplicate id", TrainFile, "id,attribute_ids\na,0\nb,1\na,2\n", Options{}, `train.csv:4: duplicate id (first on line 2): "a"`, nil},
		{"unknown attribute", TrainFile, "id,attribute_ids\na,0\nb,1 17\n", Options{}, `train.csv:3: unknown attribute id (not in labels.csv): "17"`, nil},
		{"not an integer", TrainFile, "id,attribute_ids\na,0 x1\nb,1\n", Options{}, `train.csv:2: attribute id is not an integer: "x1"`, nil},
		{"repeated attribute", TrainFile, "id,attribute_ids\na,0 2 0\nb,1\n", Options{}, `train.csv:2: attribute id repeated: "0"`, nil},
		{"empty labels", TrainFile, "id,attribute_ids\na,\nb,1\n", Options{}, `train.csv:2: empty attribute_ids for id "a"`, nil},
		{"too many fields", TrainFile, "id,attribute_ids\na,0\nb,1,2\n", Options{}, `train.csv:3: want 2 fields, got 3: "b,1,2"`, nil},
		{"bad header", TrainFile, "image,labels\na,0\nb,1\n", Options{}, `train.csv:1: header is not "id,attribute_ids": "image,labels"`, nil},
		{"one-field header", TrainFile, "id\na,0\n", Options{}, `train.csv:1: header is not "id,attribute_ids": "id"`, nil},
		{"no header", TrainFile, "a,0\nb,1\n", Options{}, `train.csv:1: header is not "id,attribute_ids": "a,0"`, nil},
		{"bad quote", TrainFile, "id,attribute_ids\na,0\nb,\"1\n", Options{}, `train.csv:3: malformed CSV`, nil},
		{"path in id", TrainFile, "id,attribute_ids\n../a,0\nb,1\n", Options{}, `train.csv:2: id is not a plain file name: "../a"`, nil},
		{"label without group", LabelsFile, "attribute_id,attribute_name\n0,culture::french\n1,women\n", Options{}, `labels.csv:3: attribute name "women" is not of the form group::value`, nil},
		{"label id repeated", LabelsFile, "attribute_id,attribute_name\n0,culture::french\n0,tag::women\n", Options{}, `labels.csv:3: attribute id 0 repeated (first for "culture::french")`, nil},
		{"label id not integer", LabelsFile, "attribute_id,attribute_name\nzero,culture::french\n", Options{}, `labels.csv:2: attribute_id is not an integer: "zero"`, nil},
		{"empty labels file", LabelsFile, "", Options{}, `labels.csv: file is empty`, nil},
		{"duplicate test id", SampleFile, "id,attribute_ids\nt1,0\nt2,0\nt1,0\n", Options{}, `sample_submission.csv:4: duplicate id (first on line 2): "t1"`, nil},
		{"missing image", TrainFile, "id,attribute_ids\na,0\nb,1\nc,2\n", Options{}, `train.csv:4: image file missing: "train/c.png"`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				LabelsFile: labels2019,
				TrainFile:  "id,attribute_ids\na,0 2\nb,3 1\n",
				SampleFile: "id,attribute_ids\nt1,0 1 2\nt2,0 1 2\n",
			}
			files[tc.file] = tc.body
			dir := writeSet(t, files, "train/a.png", "train/b.png", "test/t1.png", "test/t2.png")
			_, err := Open(dir, tc.opt)
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			var p Problem
			if !errors.As(err, &p) {
				t.Fatalf("error %T is not a Problem: %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant prefix\n  %s", err, tc.want)
			}
		})
	}
}

func TestAllowEmpty(t *testing.T) {
	dir := writeSet(t, map[string]string{
		LabelsFile: labels2019,
		TrainFile:  "id,attribute_ids\na,\nb,1\n",
		SampleFile: "id,attribute_ids\n",
	}, "train/a.png", "train/b.png")
	d, err := Open(dir, Options{ReadOptions: ReadOptions{AllowEmpty: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Train) != 2 || len(d.Train[0].Labels) != 0 {
		t.Fatalf("rows %+v", d.Train)
	}
}

// A BOM and CRLF line ends are read correctly by Open and reported as
// warnings by Validate.
func TestBOMAndCRLF(t *testing.T) {
	dir := writeSet(t, map[string]string{
		LabelsFile: "\ufeff" + strings.ReplaceAll(labels2019, "\n", "\r\n"),
		TrainFile:  "\ufeffid,attribute_ids\r\na,0 2\r\nb,3 1\r\n",
		SampleFile: "id,attribute_ids\nt1,0 1 2\nt2,0 1 2\n",
	}, "train/a.png", "train/b.png", "test/t1.png", "test/t2.png")
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels.Names[3] != "tag::women" || d.Train[1].ID != "b" {
		t.Fatalf("CRLF leaked into values: %q %q", d.Labels.Names[3], d.Train[1].ID)
	}
	_, probs := Validate(dir, Options{})
	var got []string
	for _, p := range probs {
		if p.Severity != Warning {
			t.Fatalf("unexpected error %v", p)
		}
		got = append(got, p.Error())
	}
	want := []string{
		"labels.csv:1: warning: file starts with a UTF-8 byte-order mark (skipped)",
		"labels.csv:1: warning: CRLF line ends (read as LF)",
		"train.csv:1: warning: file starts with a UTF-8 byte-order mark (skipped)",
		"train.csv:1: warning: CRLF line ends (read as LF)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Validate keeps going past the first error, up to the limit, and reports
// problems in file and line order.
func TestValidateCollects(t *testing.T) {
	dir := writeSet(t, map[string]string{
		LabelsFile: labels2019,
		TrainFile:  "id,attribute_ids\na,0\na,1\nb,9\nc,\nd,1\n",
		SampleFile: "id,attribute_ids\nt1,0\n",
	}, "train/a.png", "train/b.png")
	_, probs := Validate(dir, Options{})
	var got []string
	for _, p := range probs {
		got = append(got, p.Error())
	}
	want := []string{
		`train.csv:3: duplicate id (first on line 2): "a"`,
		`train.csv:4: unknown attribute id (not in labels.csv): "9"`,
		`train.csv:5: empty attribute_ids for id "c"`,
		`train.csv:6: image file missing: "train/d.png"`,
		`test/: image folder missing from ` + dir,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, probs = Validate(dir, Options{ReadOptions: ReadOptions{MaxProblems: 2}})
	if len(probs) != 2 {
		t.Fatalf("MaxProblems 2 gave %d problems", len(probs))
	}
}

func TestTrainTestOverlapWarns(t *testing.T) {
	dir := writeSet(t, map[string]string{
		LabelsFile: labels2019,
		TrainFile:  "id,attribute_ids\na,0\n",
		SampleFile: "id,attribute_ids\nt1,0\na,0\n",
	}, "train/a.png", "test/t1.png", "test/a.png")
	if _, err := Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	_, probs := Validate(dir, Options{})
	if len(probs) != 1 || probs[0].Error() != `sample_submission.csv:3: warning: id is also in train.csv: "a"` {
		t.Fatalf("problems %v", probs)
	}
}

func TestMissingFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "labels.csv: missing from") {
		t.Fatalf("error %v", err)
	}
}

// The real 2020 label file: 3474 labels in five groups, with quoted names
// holding doubled quotes.
func TestReadLabels2020(t *testing.T) {
	path := "../../../../shared/data/imet2020_labels.csv"
	if _, err := os.Stat(path); err != nil {
		path = "/work/shared/data/imet2020_labels.csv"
	}
	if _, err := os.Stat(path); err != nil {
		t.Skip("the iMet 2020 labels.csv is not in ../shared/data: ", err)
	}
	l, err := ReadLabels(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 3474 {
		t.Fatalf("%d labels, want 3474", l.Len())
	}
	if got := strings.Join(l.Groups, ","); got != "country,culture,dimension,medium,tags" {
		t.Fatalf("groups %s", got)
	}
	col, ok := l.Index(786)
	if !ok || l.Names[col] != `medium::"tinned" surface` || l.Groups[l.GroupOf[col]] != "medium" || l.Value(col) != `"tinned" surface` {
		t.Fatalf("label 786: %q", l.Names[col])
	}
	counts := map[string]int{}
	for _, g := range l.GroupOf {
		counts[l.Groups[g]]++
	}
	if fmt.Sprint(counts) != "map[country:100 culture:681 dimension:5 medium:1920 tags:768]" {
		t.Fatalf("group sizes %v", counts)
	}
	// Writing and reading back gives the same set, quotes included.
	out := filepath.Join(t.TempDir(), "labels.csv")
	if err := WriteLabels(out, l); err != nil {
		t.Fatal(err)
	}
	l2, err := ReadLabels(out)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(l2.IDs, l2.Names) != fmt.Sprint(l.IDs, l.Names) {
		t.Fatal("labels differ after a write and read")
	}
	orig, _ := os.ReadFile(path)
	back, _ := os.ReadFile(out)
	if string(orig) != string(back) {
		t.Fatal("written labels.csv is not byte-identical to the original")
	}
}

func TestWriteTrainRoundTrip(t *testing.T) {
	l, err := NewLabels([]int{5, 7, 9}, []string{"culture::a", "tag::b", "tag::c, with comma"})
	if err != nil {
		t.Fatal(err)
	}
	rows := []Row{{"x", []int{0, 2}}, {"y", []int{1}}}
	dir := t.TempDir()
	if err := WriteTrain(filepath.Join(dir, "train.csv"), l, rows); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "train.csv"))
	if string(data) != "id,attribute_ids\nx,5 9\ny,7\n" {
		t.Fatalf("train.csv:\n%s", data)
	}
	got, err := ReadTrain(filepath.Join(dir, "train.csv"), l, ReadOptions{})
	if err != nil || fmt.Sprint(got) != fmt.Sprint(rows) {
		t.Fatalf("read back %v, %v", got, err)
	}
}

func ExampleLabels() {
	l, _ := ParseLabels("labels.csv", []byte("attribute_id,attribute_name\n0,culture::french\n1,tag::men\n2,culture::italian\n"))
	col, _ := l.Index(2)
	fmt.Println(l.Groups, l.Groups[l.GroupOf[col]], l.Value(col), l.Columns(0))
	// Output: [culture tag] culture italian [0 2]
}

// Whatever the bytes, the readers report problems and never panic; the
// seeds are the shapes of broken files met in practice.
func FuzzReadTrain(f *testing.F) {
	for _, s := range []string{
		"id,attribute_ids\na,0\n", "a,0\nb,1\n", "id\na\n", "", "\ufeffid,attribute_ids\r\na,0 1\r\n",
		"id,attribute_ids\na,\"0\n", "id,attribute_ids\n,\n,,\n", "id,attribute_ids\na,0 0 -1 99999999999999999999\n",
	} {
		f.Add([]byte(s))
	}
	labels, _ := ParseLabels("labels.csv", []byte(labels2019))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "train.csv")
		os.WriteFile(path, data, 0o644)
		c := newCollector(1000, true)
		rows, _, err := readTrain(c, path, labels, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			for _, col := range r.Labels {
				if col < 0 || col >= labels.Len() {
					t.Fatalf("column %d out of range", col)
				}
			}
		}
		ParseLabels("labels.csv", data)
	})
}

// A 10 MB single-line value was echoed whole (10 MB on stderr); every
// message now quotes at most snippet.Max bytes of it and says its length.
func TestLongValuesAreCut(t *testing.T) {
	huge := strings.Repeat("7", 10<<20)
	for _, tc := range []struct{ file, body, want string }{
		{TrainFile, "id,attribute_ids\na,0\nb," + huge + "\n", `train.csv:3: attribute id is not an integer: "777`},
		{TrainFile, "id,attribute_ids\na,0\nb,1," + huge + "\n", `train.csv:3: want 2 fields, got 3: "b,1,777`},
		{TrainFile, "id,attribute_ids\na,0\n" + huge + ",1\n", `train.csv:3: `},
		{LabelsFile, "attribute_id,attribute_name\n0,culture::french\n1," + huge + "\n", `labels.csv:3: attribute name "777`},
	} {
		files := map[string]string{
			LabelsFile: labels2019,
			TrainFile:  "id,attribute_ids\na,0 2\nb,3 1\n",
			SampleFile: "id,attribute_ids\nt1,0 1 2\nt2,0 1 2\n",
		}
		files[tc.file] = tc.body
		dir := writeSet(t, files, "train/a.png", "train/b.png", "test/t1.png", "test/t2.png")
		_, err := Open(dir, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || len(err.Error()) > 400 || !strings.Contains(err.Error(), "bytes)") {
			t.Errorf("error of %d bytes: %.400v; want it to start with %s, quote at most 200 bytes and say the length", len(fmt.Sprint(err)), err, tc.want)
		}
	}
}
