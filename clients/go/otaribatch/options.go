package otaribatch

import batchv1 "github.com/mozilla-ai/otari-batch-grpc/generated/go/otari/batch/v1"

// Each call takes the options that mean something to it: an option given to a call it does not apply to does not
// compile (Get(ctx, id, PageSize(5)), say).

// CreateOption adjusts Create: RequestID, Metadata, CompletionWindow, User, MaxAttempts.
type CreateOption interface{ applyCreate(*options) }

// BatchOption adjusts Get, Cancel and Wait: Provider.
type BatchOption interface{ applyBatch(*options) }

// ListOption adjusts List and ListAll: PageSize, PageToken.
type ListOption interface{ applyList(*options) }

// ResultsOption adjusts Results: WaitForCompletion, OnProgress, StartAt, Provider.
type ResultsOption interface{ applyResults(*options) }

// WatchOption adjusts Watch (ResumeAfter, Provider) and WatchMany (ResumeAfter).
type WatchOption interface{ applyWatch(*options) }

type options struct {
	provider    string
	requestID   string
	metadata    map[string]string
	window      string
	user        string
	maxAttempts int32
	wait        bool
	onProgress  func(*batchv1.Batch)
	startIndex  int64
	resumeToken string
	pageSize    int32
	pageToken   string
}

type createOption func(*options)

func (f createOption) applyCreate(o *options) { f(o) }

type listOption func(*options)

func (f listOption) applyList(o *options) { f(o) }

type resultsOption func(*options)

func (f resultsOption) applyResults(o *options) { f(o) }

// ProviderOption names the provider holding a batch: an option of Get, Cancel, Wait, Results and Watch.
type ProviderOption string

func (p ProviderOption) applyBatch(o *options)   { o.provider = string(p) }
func (p ProviderOption) applyResults(o *options) { o.provider = string(p) }
func (p ProviderOption) applyWatch(o *options)   { o.provider = string(p) }

// ResumeOption resumes a watch after an event: an option of Watch and WatchMany.
type ResumeOption string

func (r ResumeOption) applyWatch(o *options) { o.resumeToken = string(r) }

// Provider names the provider holding the batch; needed only for a batch this service has not shown you.
func Provider(name string) ProviderOption { return ProviderOption(name) }

// RequestID sets CreateBatch's idempotency key (default: a fresh UUID per Create).
func RequestID(id string) CreateOption { return createOption(func(o *options) { o.requestID = id }) }

// Metadata sets the batch's key/value pairs on Create.
func Metadata(m map[string]string) CreateOption {
	return createOption(func(o *options) { o.metadata = m })
}

// CompletionWindow sets the completion window on Create (default "24h").
func CompletionWindow(w string) CreateOption { return createOption(func(o *options) { o.window = w }) }

// User sets the user billed on Create (required with the master key).
func User(u string) CreateOption { return createOption(func(o *options) { o.user = u }) }

// MaxAttempts sets how many times each request is tried at most on Create (2 to 5 run the requests whose failure
// is retryable again, while no one calls; the service keeps your key, encrypted, for that batch until it ends).
func MaxAttempts(n int32) CreateOption { return createOption(func(o *options) { o.maxAttempts = n }) }

// WaitForCompletion makes Results wait for a batch that is not completed yet instead of failing with
// FAILED_PRECONDITION (BATCH_NOT_COMPLETED).
func WaitForCompletion() ResultsOption { return resultsOption(func(o *options) { o.wait = true }) }

// OnProgress is called with the batch's state on each progress message while Results waits.
func OnProgress(f func(*batchv1.Batch)) ResultsOption {
	return resultsOption(func(o *options) { o.onProgress = f })
}

// StartAt makes Results start at the result with this index (0 is the first).
func StartAt(index int64) ResultsOption {
	return resultsOption(func(o *options) { o.startIndex = index })
}

// ResumeAfter makes Watch or WatchMany resume after the event that carried this resume token.
func ResumeAfter(token string) ResumeOption { return ResumeOption(token) }

// PageSize sets List's page size (0: the server's default, 20).
func PageSize(n int32) ListOption { return listOption(func(o *options) { o.pageSize = n }) }

// PageToken makes List continue from a previous page's next_page_token.
func PageToken(token string) ListOption { return listOption(func(o *options) { o.pageToken = token }) }

// collect applies each option of one kind (apply is that kind's method, as CreateOption.applyCreate).
func collect[O any](opts []O, apply func(O, *options)) (o options) {
	for _, opt := range opts {
		apply(opt, &o)
	}
	return o
}
