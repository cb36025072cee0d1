package otaribatch_test

import (
	"os"
	"strings"
	"testing"
)

// The README's snippet is Example's body, so what a reader copies is what `go test` compiles and runs.
func TestReadmeSnippetIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	snippet := between(t, string(readme), "```go\n", "```\n")
	body := between(t, string(example), "func Example() {\n", "\t// Output:")
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(line, "\t"))
	}
	want := strings.ReplaceAll(strings.Join(lines, "\n")+"\n", "serverAddr", `"127.0.0.1:50051"`)
	if snippet != want {
		t.Errorf("clients/go/README.md's ```go block is not Example's body; README:\n%s\nExample:\n%s", snippet, want)
	}
}

func between(t *testing.T, text, start, end string) string {
	t.Helper()
	i := strings.Index(text, start)
	if i < 0 {
		t.Fatalf("no %q", start)
	}
	text = text[i+len(start):]
	j := strings.Index(text, end)
	if j < 0 {
		t.Fatalf("no %q after %q", end, start)
	}
	return text[:j]
}
