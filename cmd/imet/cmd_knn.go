package main

import (
	"fmt"

	"imet/internal/data/dataset"
	"imet/internal/data/folds"
	"imet/internal/engine/torch"
	"imet/internal/postprocess/knn"
	"imet/internal/postprocess/probs"
)

type knnCmd struct {
	OOF      string    `help:"The model's out-of-fold probabilities (.npy with sidecars)." required:"" name:"oof" type:"existingfile"`
	Test     string    `help:"The model's test probabilities." type:"existingfile"`
	TrainEmb []string  `help:"Embeddings of the training images (imet predict --embeddings): one file, or one per fold model in fold order (fold k's rows are looked up in file k)." required:"" name:"train-emb" sep:","`
	TestEmb  []string  `help:"Embeddings of the test images, as many files as --train-emb, from the same models." name:"test-emb" sep:","`
	Truth    string    `help:"train.csv: the labels the neighbours pass on." required:"" type:"existingfile"`
	Labels   string    `help:"labels.csv: the label columns and their groups." required:"" type:"existingfile"`
	Folds    string    `help:"folds.csv of the cross-validation: an OOF row's neighbours come only from other folds." required:"" type:"existingfile"`
	OutOOF   string    `help:"Blended out-of-fold probabilities to write." required:"" name:"out-oof"`
	OutTest  string    `help:"Blended test probabilities to write (needs --test and --test-emb)." name:"out-test"`
	K        int       `help:"Neighbours per image." default:"20" name:"k"`
	Temps    []float64 `help:"Softmax temperatures to try." default:"0.01,0.03,0.1,0.3" sep:","`
	Alphas   []float64 `help:"Neighbour shares of the blend to try (0: the model alone, 1: the neighbours alone)." default:"0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1" sep:","`
	Block    int       `help:"Query rows per matrix product." default:"1024"`
	Device   string    `help:"Where the search runs: cpu, cuda or cuda:N." default:"cpu"`
	Threads  int       `help:"libtorch threads (0: one per core)." default:"0"`
}

func init() {
	register("knn", "Blend a model's probabilities with labels transferred from its nearest training images (cosine, softmax weights), the blend searched on OOF.", "Post-processing", &knnCmd{})
}

// alignRows returns f's rows in the order of ids, naming the file and the
// first id it lacks.
func alignRows(path string, f *probs.File, ids []string) ([]float32, error) {
	at := make(map[string]int, len(f.IDs))
	for i, id := range f.IDs {
		at[id] = i
	}
	out := make([]float32, 0, len(ids)*f.Cols)
	for x, id := range ids {
		i, ok := at[id]
		if !ok {
			return nil, fmt.Errorf("%s has no row for image %q (row %d of the probabilities)", probs.IDsPath(path), id, x+1)
		}
		out = append(out, f.Row(i)...)
	}
	return out, nil
}

func (c *knnCmd) Run(g *Globals) error {
	if (c.Test != "") != (len(c.TestEmb) > 0) || (c.OutTest != "") != (c.Test != "") {
		return fmt.Errorf("--test, --test-emb and --out-test go together")
	}
	dev, err := torch.ParseDevice(c.Device)
	if err == nil {
		err = torch.CheckDevice(dev)
	}
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	labels, err := dataset.ReadLabels(c.Labels)
	if err != nil {
		return err
	}
	oof, err := probs.Load(c.OOF)
	if err != nil {
		return err
	}
	if err := checkColumns(c.OOF, oof, labels, c.Labels); err != nil {
		return err
	}
	rows, err := dataset.ReadTrain(c.Truth, labels, dataset.ReadOptions{AllowEmpty: true})
	if err != nil {
		return err
	}
	truth, err := dataset.LabelsFor(rows, oof.IDs)
	if err != nil {
		return missingID(err, probs.IDsPath(c.OOF), c.Truth)
	}
	a, err := folds.Read(c.Folds)
	if err != nil {
		return err
	}
	fold, err := a.Of(oof.IDs)
	if err != nil {
		return missingID(err, probs.IDsPath(c.OOF), c.Folds)
	}
	p := &knn.Problem{Rows: oof.Rows, Cols: oof.Cols, OOF: oof.Data, Truth: truth, Fold: fold, K: a.K}
	embeddings := func(paths []string, ids []string) ([][]float32, error) {
		var out [][]float32
		for _, path := range paths {
			e, err := probs.Load(path)
			if err != nil {
				return nil, err
			}
			if p.Dim != 0 && e.Cols != p.Dim {
				return nil, fmt.Errorf("%s has %d-wide embeddings, %s %d", path, e.Cols, paths[0], p.Dim)
			}
			p.Dim = e.Cols
			m, err := alignRows(path, e, ids)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	if p.TrainEmb, err = embeddings(c.TrainEmb, oof.IDs); err != nil {
		return err
	}
	var test *probs.File
	if c.Test != "" {
		if test, err = probs.Load(c.Test); err != nil {
			return err
		}
		if err := checkColumns(c.Test, test, labels, c.Labels); err != nil {
			return err
		}
		p.Test, p.TestRows = test.Data, test.Rows
		if p.TestEmb, err = embeddings(c.TestEmb, test.IDs); err != nil {
			return err
		}
	}
	o := knn.Options{K: c.K, Block: c.Block, Device: dev, Threads: c.Threads}
	oofNb, err := p.OOFNeighbours(o)
	if err != nil {
		return err
	}
	var testNb []*knn.Neighbours
	if test != nil {
		if testNb, err = p.TestNeighbours(o); err != nil {
			return err
		}
	}
	res, err := knn.Tune(p, oofNb, testNb, knn.Grid{Alphas: c.Alphas, Temps: c.Temps}, labels.GroupOf, labels.Groups)
	if err != nil {
		return err
	}
	ids := attrIDs(labels)
	if err := probs.Save(c.OutOOF, &probs.File{Matrix: &probs.Matrix{Rows: p.Rows, Cols: p.Cols, Data: res.OOF}, IDs: oof.IDs, Labels: ids}); err != nil {
		return err
	}
	if test != nil {
		if err := probs.Save(c.OutTest, &probs.File{Matrix: &probs.Matrix{Rows: p.TestRows, Cols: p.Cols, Data: res.Test}, IDs: test.IDs, Labels: ids}); err != nil {
			return err
		}
	}
	if !g.Quiet {
		fmt.Fprintf(g.Stdout, "%d images, %d-wide embeddings in %d space(s), k=%d\n", p.Rows, p.Dim, len(p.TrainEmb), c.K)
		fmt.Fprintf(g.Stdout, "OOF F2 (global threshold): model %.4f, neighbours alone %.4f, blend %.4f at share %.2g, temperature %g\n",
			res.BaseF2, res.KNNF2, res.F2, res.Alpha, res.Temp)
	}
	return nil
}
