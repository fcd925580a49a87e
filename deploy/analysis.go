package deploy

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

//go:embed analysis/*.yaml
var analysisFiles embed.FS

// AnalysisTemplates returns the ready-made ClusterAnalysisTemplates
// (analysis/*.yaml, which the chart installs with analysisTemplates.enabled),
// by file, each decoded strictly.
func AnalysisTemplates() (map[string][]*analysisv1alpha1.ClusterAnalysisTemplate, error) {
	out := map[string][]*analysisv1alpha1.ClusterAnalysisTemplate{}
	err := fs.WalkDir(analysisFiles, "analysis", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		b, err := analysisFiles.ReadFile(p)
		if err != nil {
			return err
		}
		docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := docs.Read()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			t := &analysisv1alpha1.ClusterAnalysisTemplate{}
			if err := yaml.UnmarshalStrict(doc, t); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			out[path.Base(p)] = append(out[path.Base(p)], t)
		}
	})
	return out, err
}
