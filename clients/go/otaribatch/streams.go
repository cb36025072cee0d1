package otaribatch

import (
	"context"
	"fmt"
	"io"

	batchv1 "github.com/mozilla-ai/otari-batch-grpc/generated/go/otari/batch/v1"
)

// Results iterates over a batch's results one at a time, although the server sends them in chunks. A broken
// stream (UNAVAILABLE) is reopened at the next index. Use it as bufio.Scanner:
//
//	it := client.Results(ctx, id)
//	defer it.Close()
//	for it.Next() { use(it.Index(), it.Result()) }
//	if err := it.Err(); err != nil { ... }
type Results struct {
	c       *Client
	ctx     context.Context
	cancel  context.CancelFunc // of the open stream
	stream  batchv1.BatchService_StreamResultsClient
	batchID string
	o       options
	chunk   []*batchv1.BatchResult
	next    int64 // index of the first result in chunk (of the next one to yield)
	index   int64
	result  *batchv1.BatchResult
	total   int64
	attempt int
	done    bool
	err     error
}

// Results streams the batch's results. Options: WaitForCompletion, OnProgress, StartAt, Provider.
func (c *Client) Results(ctx context.Context, batchID string, opts ...ResultsOption) *Results {
	o := collect(opts, ResultsOption.applyResults)
	return &Results{c: c, ctx: ctx, batchID: batchID, o: o, next: o.startIndex, index: -1}
}

// Next advances to the next result; false at the end or on error (see Err).
func (r *Results) Next() bool {
	for {
		if len(r.chunk) > 0 {
			r.result, r.index = r.chunk[0], r.next
			r.chunk, r.next = r.chunk[1:], r.next+1
			return true
		}
		r.result = nil
		if r.done || r.err != nil {
			return false
		}
		if r.stream == nil {
			ctx, cancel := context.WithCancel(r.c.auth(r.ctx))
			stream, err := r.c.stub.StreamResults(ctx, &batchv1.StreamResultsRequest{
				BatchId: r.batchID, Provider: r.o.provider, StartIndex: r.next, Wait: r.o.wait,
			})
			if err != nil {
				cancel()
				r.retryOrFail(err)
				continue
			}
			r.stream, r.cancel = stream, cancel
		}
		msg, err := r.stream.Recv()
		if err == io.EOF {
			r.done = true
			r.Close()
			continue
		}
		if err != nil {
			r.Close()
			r.retryOrFail(err)
			continue
		}
		r.attempt = 0
		r.total = msg.GetTotalCount()
		if p := msg.GetProgress(); p != nil && len(msg.GetResults()) == 0 {
			if r.o.onProgress != nil {
				r.o.onProgress(p)
			}
			continue
		}
		skip := r.next - msg.GetFirstIndex() // a resumed stream never overlaps, but be safe if it does
		if skip < 0 || skip > int64(len(msg.GetResults())) {
			r.err = fmt.Errorf("otari batch: results chunk at %d, expected %d", msg.GetFirstIndex(), r.next)
			r.Close()
			return false
		}
		r.chunk = msg.GetResults()[skip:]
	}
}

func (r *Results) retryOrFail(err error) {
	r.attempt++
	if err = r.c.pauseOrFail(r.ctx, newError(err), r.attempt); err != nil {
		r.err = err
	}
}

// Result is the current result.
func (r *Results) Result() *batchv1.BatchResult { return r.result }

// Index is the current result's position in the batch's results, from 0.
func (r *Results) Index() int64 { return r.index }

// Total is the batch's number of results as the server last said (0 before the first message).
func (r *Results) Total() int64 { return r.total }

// Err is the error that ended the iteration, nil after a complete stream.
func (r *Results) Err() error { return r.err }

// Close ends the open stream, if any; safe to call more than once.
func (r *Results) Close() {
	if r.cancel != nil {
		r.cancel()
	}
	r.stream, r.cancel = nil, nil
}

// Events iterates over a watch stream: Watch's (a snapshot, then each change, heartbeats, until the batch is
// terminal) or WatchMany's (never ending by itself). A broken stream (UNAVAILABLE) is resumed with the last resume
// token.
type Events struct {
	c       *Client
	ctx     context.Context
	cancel  context.CancelFunc
	open    func(ctx context.Context, token string) (receive, error)
	recv    receive
	token   string
	event   *batchv1.BatchEvent
	attempt int
	done    bool
	err     error
}

// receive reads a stream's next event.
type receive func() (*batchv1.BatchEvent, error)

// receiver reads the events of a WatchBatch or WatchBatches stream (their messages each carry one).
func receiver[M interface{ GetEvent() *batchv1.BatchEvent }](recv func() (M, error)) receive {
	return func() (*batchv1.BatchEvent, error) {
		msg, err := recv()
		return msg.GetEvent(), err
	}
}

// Watch subscribes to one batch. Options: ResumeAfter, Provider.
func (c *Client) Watch(ctx context.Context, batchID string, opts ...WatchOption) *Events {
	o := collect(opts, WatchOption.applyWatch)
	open := func(ctx context.Context, token string) (receive, error) {
		stream, err := c.stub.WatchBatch(ctx, &batchv1.WatchBatchRequest{
			BatchId: batchID, Provider: o.provider, ResumeToken: token,
		})
		if err != nil {
			return nil, err
		}
		return receiver(stream.Recv), nil
	}
	return &Events{c: c, ctx: ctx, open: open, token: o.resumeToken}
}

// WatchMany subscribes to many batches on one stream (Event().GetBatch().GetId() says which): the listed ones
// (each shown to you through this service) or, with none listed, every live batch of yours and each one you
// create or are shown while watching. It never ends by itself: stop reading, then Close (or cancel ctx). A
// batch's trouble comes as an UNAVAILABLE or REMOVED event with a problem, not as an error. Option: ResumeAfter.
func (c *Client) WatchMany(ctx context.Context, batchIDs []string, opts ...WatchOption) *Events {
	o := collect(opts, WatchOption.applyWatch)
	open := func(ctx context.Context, token string) (receive, error) {
		stream, err := c.stub.WatchBatches(ctx, &batchv1.WatchBatchesRequest{BatchIds: batchIDs, ResumeToken: token})
		if err != nil {
			return nil, err
		}
		return receiver(stream.Recv), nil
	}
	return &Events{c: c, ctx: ctx, open: open, token: o.resumeToken}
}

// Next waits for the next event; false once Watch's batch is terminal and its last event was read, or on error.
func (e *Events) Next() bool {
	for {
		if e.done || e.err != nil {
			e.event = nil
			return false
		}
		if e.recv == nil {
			ctx, cancel := context.WithCancel(e.c.auth(e.ctx))
			recv, err := e.open(ctx, e.token)
			if err != nil {
				cancel()
				e.retryOrFail(err)
				continue
			}
			e.recv, e.cancel = recv, cancel
		}
		event, err := e.recv()
		if err == io.EOF {
			e.done = true
			e.Close()
			continue
		}
		if err != nil {
			e.Close()
			e.retryOrFail(err)
			continue
		}
		e.attempt = 0
		e.event = event
		e.token = event.GetResumeToken()
		return true
	}
}

func (e *Events) retryOrFail(err error) {
	e.attempt++
	if err = e.c.pauseOrFail(e.ctx, newError(err), e.attempt); err != nil {
		e.err = err
	}
}

// Event is the current event.
func (e *Events) Event() *batchv1.BatchEvent { return e.event }

// ResumeToken is the last event's resume token: pass it with ResumeAfter to continue later.
func (e *Events) ResumeToken() string { return e.token }

// Err is the error that ended the watch, nil after Watch's terminal event.
func (e *Events) Err() error { return e.err }

// Close ends the open stream, if any; safe to call more than once.
func (e *Events) Close() {
	if e.cancel != nil {
		e.cancel()
	}
	e.recv, e.cancel = nil, nil
}
