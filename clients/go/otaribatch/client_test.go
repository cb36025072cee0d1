package otaribatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mozilla-ai/otari-batch-grpc/clients/go/otaribatch"
	batchv1 "github.com/mozilla-ai/otari-batch-grpc/generated/go/otari/batch/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func dial(t *testing.T, key string) *otaribatch.Client {
	t.Helper()
	client, err := otaribatch.Dial(serverAddr, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func ask(content string) map[string]interface{} {
	return map[string]interface{}{
		"messages":   []interface{}{map[string]interface{}{"role": "user", "content": content}},
		"max_tokens": 50,
	}
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// The README's example: create, watch to the end, then read the results one at a time.
func TestCreateWatchResults(t *testing.T) {
	ctx := withTimeout(t, 30*time.Second)
	client := dial(t, "sim-key-alice")

	batch, err := client.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{
		{CustomID: "q1", Body: ask("Hi")},
		{CustomID: "q2", Body: ask("Bye")},
		{CustomID: "q3", Body: map[string]interface{}{
			"messages": []interface{}{map[string]interface{}{"role": "user", "content": "fail"}},
			"simulate": map[string]interface{}{"fail": map[string]interface{}{"code": "bad", "message": "no"}},
		}},
	}, otaribatch.Metadata(map[string]string{"team": "search"}))
	if err != nil {
		t.Fatal(err)
	}
	if batch.GetProvider() != "openai" || batch.GetMetadata()["team"] != "search" {
		t.Fatalf("unexpected batch %v", batch)
	}

	events := client.Watch(ctx, batch.GetId())
	defer events.Close()
	var kinds []batchv1.BatchEventKind
	var last *batchv1.BatchEvent
	for events.Next() {
		last = events.Event()
		kinds = append(kinds, last.GetKind())
	}
	if err := events.Err(); err != nil {
		t.Fatal(err)
	}
	if kinds[0] != batchv1.BatchEventKind_BATCH_EVENT_KIND_SNAPSHOT || last.GetBatch().GetStatus() != batchv1.BatchStatus_BATCH_STATUS_COMPLETED {
		t.Fatalf("events %v, last %v", kinds, last)
	}
	if events.ResumeToken() == "" {
		t.Fatal("no resume token")
	}

	results := client.Results(ctx, batch.GetId())
	defer results.Close()
	var got []string
	for results.Next() {
		r := results.Result()
		if results.Index() != int64(len(got)) {
			t.Fatalf("index %d at position %d", results.Index(), len(got))
		}
		switch outcome := r.GetOutcome().(type) {
		case *batchv1.BatchResult_Completion:
			got = append(got, r.GetCustomId()+"="+outcome.Completion.GetChoices()[0].GetMessage().GetContent())
		case *batchv1.BatchResult_Error:
			got = append(got, r.GetCustomId()+"!"+outcome.Error.GetCode())
		}
	}
	if err := results.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[q1=Echo: Hi q2=Echo: Bye q3!bad]" || results.Total() != 3 {
		t.Fatalf("results %v (total %d)", got, results.Total())
	}

	// Get, Wait and List see the same batch; the provider is remembered by the service.
	again, err := client.Get(ctx, batch.GetId())
	if err != nil || again.GetStatus() != batchv1.BatchStatus_BATCH_STATUS_COMPLETED {
		t.Fatalf("get: %v %v", again, err)
	}
	waited, done, err := client.Wait(ctx, batch.GetId(), 5*time.Second)
	if err != nil || !done || waited.GetId() != batch.GetId() {
		t.Fatalf("wait: %v %v %v", waited, done, err)
	}
	all, err := client.ListAll(ctx, "openai", otaribatch.PageSize(1))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range all {
		found = found || b.GetId() == batch.GetId()
	}
	if !found {
		t.Fatalf("%s not listed in %d batches", batch.GetId(), len(all))
	}
}

// Results arrive in chunks of about 256 KiB; the iterator yields one at a time, in order, after waiting.
func TestResultsChunksWaitAndStartAt(t *testing.T) {
	ctx := withTimeout(t, 60*time.Second)
	client := dial(t, "sim-key-alice")
	const n = 400 // about 2 KiB each: several chunks
	requests := make([]otaribatch.Request, n)
	for i := range requests {
		requests[i] = otaribatch.Request{CustomID: fmt.Sprintf("r%d", i), Body: ask(bigContent(i))}
	}
	batch, err := client.Create(ctx, "openai:gpt-4o-mini", requests)
	if err != nil {
		t.Fatal(err)
	}
	progress := 0
	results := client.Results(ctx, batch.GetId(), otaribatch.WaitForCompletion(),
		otaribatch.OnProgress(func(b *batchv1.Batch) { progress++ }))
	defer results.Close()
	count := 0
	for results.Next() {
		if want := fmt.Sprintf("r%d", count); results.Result().GetCustomId() != want || results.Index() != int64(count) {
			t.Fatalf("got %s at %d, want %s", results.Result().GetCustomId(), results.Index(), want)
		}
		count++
	}
	if err := results.Err(); err != nil {
		t.Fatal(err)
	}
	if count != n || results.Total() != n || progress == 0 {
		t.Fatalf("count %d total %d progress messages %d", count, results.Total(), progress)
	}

	tail := client.Results(ctx, batch.GetId(), otaribatch.StartAt(n-3))
	defer tail.Close()
	var ids []string
	for tail.Next() {
		ids = append(ids, fmt.Sprintf("%d:%s", tail.Index(), tail.Result().GetCustomId()))
	}
	if tail.Err() != nil || fmt.Sprint(ids) != fmt.Sprintf("[%d:r%d %d:r%d %d:r%d]", n-3, n-3, n-2, n-2, n-1, n-1) {
		t.Fatalf("tail %v %v", ids, tail.Err())
	}
}

func TestErrorDetails(t *testing.T) {
	ctx := withTimeout(t, 30*time.Second)
	alice := dial(t, "sim-key-alice")

	// INVALID_ARGUMENT with BadRequest field violations, before any gateway call.
	_, err := alice.Create(ctx, "", []otaribatch.Request{{CustomID: "a", Body: ask("x")}, {CustomID: "a", Body: ask("y")}})
	e, ok := otaribatch.AsError(err)
	if !ok || e.Code != codes.InvalidArgument || e.Reason != "INVALID_REQUEST" || e.Domain != "batch.otari.mozilla.ai" {
		t.Fatalf("invalid: %#v", err)
	}
	fields := map[string]bool{}
	for _, v := range e.FieldViolations {
		fields[v.Field] = true
	}
	if !fields["model"] || !fields["requests[1].custom_id"] {
		t.Fatalf("field violations %v", e.FieldViolations)
	}
	if status.Code(err) != codes.InvalidArgument { // the gRPC status is still reachable
		t.Fatalf("status.Code: %v", status.Code(err))
	}

	// FAILED_PRECONDITION with the batch's status in ErrorInfo.metadata.
	batch, err := alice.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{{CustomID: "a", Body: ask("x")}})
	if err != nil {
		t.Fatal(err)
	}
	results := alice.Results(ctx, batch.GetId())
	if results.Next() {
		t.Fatal("results of a batch not completed")
	}
	results.Close()
	var perr *otaribatch.Error
	if !errors.As(results.Err(), &perr) || perr.Code != codes.FailedPrecondition || perr.Reason != "BATCH_NOT_COMPLETED" ||
		perr.Metadata["status"] == "" || perr.Metadata["batch_id"] != batch.GetId() {
		t.Fatalf("not completed: %#v", results.Err())
	}

	// Another user's batch is NOT_FOUND; a key the gateway refuses is UNAUTHENTICATED.
	_, err = dial(t, "sim-key-bob").Get(ctx, batch.GetId(), otaribatch.Provider("openai"))
	if e, ok := otaribatch.AsError(err); !ok || e.Code != codes.NotFound || e.Reason != "BATCH_NOT_FOUND" {
		t.Fatalf("bob: %#v", err)
	}
	_, err = dial(t, "not-a-key").Get(ctx, batch.GetId(), otaribatch.Provider("openai"))
	if e, ok := otaribatch.AsError(err); !ok || e.Code != codes.Unauthenticated || e.Reason != "GATEWAY_UNAUTHENTICATED" {
		t.Fatalf("bad key: %#v", err)
	}

	// RESOURCE_EXHAUSTED with RetryInfo from the gateway's Retry-After; not retried by Create.
	simulator(t, "POST", "/_simulator/faults", map[string]interface{}{"op": "create", "status": 429, "retry_after": "7", "times": 1})
	_, err = alice.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{{CustomID: "a", Body: ask("x")}})
	e, ok = otaribatch.AsError(err)
	if !ok || e.Code != codes.ResourceExhausted || e.Reason != "GATEWAY_RATE_LIMITED" || e.RetryDelay == nil || *e.RetryDelay != 7*time.Second {
		t.Fatalf("rate limited: %#v", err)
	}
	if !e.Retryable() {
		t.Fatal("an error with RetryInfo is retryable")
	}
}

// UNAVAILABLE + RetryInfo is retried after the delay: a results stream reopens where it stopped.
func TestResultsRetryUnavailable(t *testing.T) {
	ctx := withTimeout(t, 30*time.Second)
	client := dial(t, "sim-key-alice")
	batch, err := client.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{{CustomID: "a", Body: ask("x")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, done, err := client.Wait(ctx, batch.GetId(), 20*time.Second); err != nil || !done {
		t.Fatalf("wait: %v %v", done, err)
	}
	before := opCount(t, "results")
	simulator(t, "POST", "/_simulator/faults", map[string]interface{}{"op": "results", "status": 503, "retry_after": "1", "times": 1})
	started := time.Now()
	results := client.Results(ctx, batch.GetId())
	defer results.Close()
	var ids []string
	for results.Next() {
		ids = append(ids, results.Result().GetCustomId())
	}
	if err := results.Err(); err != nil || fmt.Sprint(ids) != "[a]" {
		t.Fatalf("results %v: %v", ids, err)
	}
	if waited := time.Since(started); waited < 900*time.Millisecond {
		t.Fatalf("retried after %v, RetryInfo said 1s", waited)
	}
	if calls := opCount(t, "results") - before; calls != 2 {
		t.Fatalf("%d gateway results calls, want 2", calls)
	}
}

// A retried Create with the same request_id returns the first batch and creates nothing.
func TestCreateIdempotent(t *testing.T) {
	ctx := withTimeout(t, 30*time.Second)
	client := dial(t, "sim-key-alice")
	const id = "0b6c7a52-36a5-4f49-9d0e-2f0a3c1b5e77"
	requests := []otaribatch.Request{{CustomID: "a", Body: ask("x")}}
	before := opCount(t, "create")
	first, err := client.Create(ctx, "openai:gpt-4o-mini", requests, otaribatch.RequestID(id))
	if err != nil {
		t.Fatal(err)
	}
	again, err := client.Create(ctx, "openai:gpt-4o-mini", requests, otaribatch.RequestID(id))
	if err != nil || again.GetId() != first.GetId() || opCount(t, "create")-before != 1 {
		t.Fatalf("idempotent retry: %v %v", again, err)
	}
	_, err = client.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{{CustomID: "b", Body: ask("y")}}, otaribatch.RequestID(id))
	if e, ok := otaribatch.AsError(err); !ok || e.Code != codes.AlreadyExists || e.Reason != "REQUEST_ID_REUSED" {
		t.Fatalf("reused request_id: %#v", err)
	}
}

func TestMoreThanTenThousandRequestsMakeOneBatchOfParts(t *testing.T) {
	ctx := withTimeout(t, 60*time.Second)
	client := dial(t, "sim-key-alice")
	requests := make([]otaribatch.Request, 10_001)
	for i := range requests {
		requests[i] = otaribatch.Request{CustomID: fmt.Sprintf("r%d", i), Body: ask("q")}
	}
	batch, err := client.Create(ctx, "openai:gpt-4o-mini", requests, otaribatch.MaxAttempts(2))
	if err != nil {
		t.Fatal(err)
	}
	parts := batch.GetParts()
	if !strings.HasPrefix(batch.GetId(), "obatch_") || len(parts) != 2 || parts[0].GetRequestCount() != 10_000 ||
		parts[1].GetRequestCount() != 1 || batch.GetRequestCounts().GetTotal() != 10_001 {
		t.Fatalf("a batch of parts: %v", batch)
	}
}

func TestCancel(t *testing.T) {
	ctx := withTimeout(t, 30*time.Second)
	client := dial(t, "sim-key-alice")
	batch, err := client.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{{CustomID: "a", Body: ask("x")}})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := client.Cancel(ctx, batch.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if s := cancelled.GetStatus(); s != batchv1.BatchStatus_BATCH_STATUS_CANCELLING && s != batchv1.BatchStatus_BATCH_STATUS_CANCELLED {
		t.Fatalf("status after cancel: %v", s)
	}
	final, done, err := client.Wait(ctx, batch.GetId(), 20*time.Second)
	if err != nil || !done || final.GetStatus() != batchv1.BatchStatus_BATCH_STATUS_CANCELLED {
		t.Fatalf("wait: %v %v %v", final, done, err)
	}
	results := client.Results(ctx, batch.GetId())
	defer results.Close()
	if results.Next() {
		t.Fatal("results of a cancelled batch")
	}
	if e, ok := otaribatch.AsError(results.Err()); !ok || e.Code != codes.FailedPrecondition || e.Reason != "BATCH_HAS_NO_RESULTS" {
		t.Fatalf("results after cancel: %#v", results.Err())
	}
}

// WatchMany follows the listed batches on one stream, which ends when the caller closes it.
func TestWatchMany(t *testing.T) {
	ctx := withTimeout(t, 30*time.Second)
	client := dial(t, "sim-key-alice")
	var ids []string
	for _, q := range []string{"one", "two"} {
		batch, err := client.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{{CustomID: "q", Body: ask(q)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, batch.GetId())
	}
	events := client.WatchMany(ctx, ids)
	seen := map[string]bool{}
	for len(seen) < 2 && events.Next() {
		if events.Event().GetKind() == batchv1.BatchEventKind_BATCH_EVENT_KIND_SNAPSHOT {
			seen[events.Event().GetBatch().GetId()] = true
		}
	}
	events.Close()
	if err := events.Err(); err != nil || !seen[ids[0]] || !seen[ids[1]] {
		t.Fatalf("snapshots of %v, error %v", seen, err)
	}
	if events.ResumeToken() == "" {
		t.Error("no resume token to continue with")
	}
}

// A connection dialled by the caller (as their grpc-go version prefers) serves the client; Close leaves it open.
func TestNewOnTheCallersConnection(t *testing.T) {
	ctx := withTimeout(t, 30*time.Second)
	conn, err := grpc.Dial(serverAddr, grpc.WithInsecure()) //nolint:staticcheck // grpc-go 1.33 (Debian 12)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := otaribatch.New(conn, "sim-key-alice")
	batch, err := client.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{{CustomID: "q", Body: ask("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	if _, err := otaribatch.New(conn, "sim-key-alice").Get(ctx, batch.GetId()); err != nil {
		t.Fatalf("the caller's connection was closed by the client: %v", err)
	}
}

// Each call takes only the options that mean something to it (a misplaced one does not compile).
func TestOptionsAreTypedPerCall(t *testing.T) {
	cases := []struct {
		option  interface{}
		applies map[string]bool
	}{
		{otaribatch.Provider("openai"), map[string]bool{"batch": true, "results": true, "watch": true}},
		{otaribatch.PageSize(5), map[string]bool{"list": true}},
		{otaribatch.PageToken("t"), map[string]bool{"list": true}},
		{otaribatch.RequestID("r"), map[string]bool{"create": true}},
		{otaribatch.Metadata(nil), map[string]bool{"create": true}},
		{otaribatch.StartAt(1), map[string]bool{"results": true}},
		{otaribatch.WaitForCompletion(), map[string]bool{"results": true}},
		{otaribatch.ResumeAfter("t"), map[string]bool{"watch": true}},
	}
	for _, c := range cases {
		_, create := c.option.(otaribatch.CreateOption)
		_, batch := c.option.(otaribatch.BatchOption)
		_, list := c.option.(otaribatch.ListOption)
		_, results := c.option.(otaribatch.ResultsOption)
		_, watch := c.option.(otaribatch.WatchOption)
		got := map[string]bool{"create": create, "batch": batch, "list": list, "results": results, "watch": watch}
		for kind, applies := range got {
			if applies != c.applies[kind] {
				t.Errorf("%T as a %s option: %v, want %v", c.option, kind, applies, c.applies[kind])
			}
		}
	}
}
