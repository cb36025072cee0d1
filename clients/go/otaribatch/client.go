// Package otaribatch is a Go client for otari-batch-grpc's BatchService (package otari.batch.v1).
//
//	client, err := otaribatch.Dial("127.0.0.1:50051", "sim-key-alice")
//	defer client.Close()
//	batch, err := client.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{{CustomID: "q1", Body: body}})
//	results := client.Results(ctx, batch.GetId(), otaribatch.WaitForCompletion())
//	defer results.Close()
//	for results.Next() {
//		fmt.Println(results.Result().GetCustomId())
//	}
//	err = results.Err()
//
// The key goes on every call as `authorization: Bearer <key>`. Create sends a fresh request_id and retries
// UNAVAILABLE with the same one, so a lost reply never makes a second batch. Results and Watch resume a broken
// stream where it stopped (start_index, resume_token), waiting as the server's RetryInfo says. Every failed call
// returns an *Error with the google.rpc details.
package otaribatch

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	batchv1 "github.com/mozilla-ai/otari-batch-grpc/generated/go/otari/batch/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Client calls BatchService with one API key.
type Client struct {
	stub         batchv1.BatchServiceClient
	conn         *grpc.ClientConn // nil when the caller owns the connection
	apiKey       string
	MaxAttempts  int           // attempts of a retried call or stream (default 5)
	DefaultRetry time.Duration // first pause when an UNAVAILABLE error carries no RetryInfo; doubles (default 1s)
}

// Dial connects to target. Without options the connection is plaintext (for loopback and meshes); pass
// grpc.WithTransportCredentials(...) for TLS.
func Dial(target, apiKey string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithInsecure()} //nolint:staticcheck // kept for grpc-go 1.33 (Debian 12)
	}
	conn, err := grpc.Dial(target, opts...)
	if err != nil {
		return nil, err
	}
	c := New(conn, apiKey)
	c.conn = conn
	return c, nil
}

// New wraps a connection the caller owns, dialled as the caller's grpc-go version prefers (grpc.NewClient with
// insecure.NewCredentials() on a current one); Close then leaves it open.
func New(conn grpc.ClientConnInterface, apiKey string) *Client {
	return &Client{stub: batchv1.NewBatchServiceClient(conn), apiKey: apiKey, MaxAttempts: 5, DefaultRetry: time.Second}
}

// Close closes the connection Dial made.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Stub is the generated client, for calls this package does not wrap. Add the key yourself:
// metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key).
func (c *Client) Stub() batchv1.BatchServiceClient { return c.stub }

func (c *Client) auth(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.apiKey)
}

// Request is one chat-completion request of a batch: your id for it and an OpenAI chat-completion body.
type Request struct {
	CustomID string
	Body     map[string]interface{}
}

// Create creates a batch of requests for model ("provider:model"). It sends a fresh request_id (or RequestID's)
// and retries UNAVAILABLE with that same id: a retry after a lost reply returns the first batch. Any number of
// requests one message holds (the server's limit, 64 MiB by default: about 50,000 of 1 KiB): past the gateway's
// 10,000 the service splits them into parts upstream and answers one batch of its own id (Batch.Parts).
func (c *Client) Create(ctx context.Context, model string, requests []Request, opts ...CreateOption) (*batchv1.Batch, error) {
	o := collect(opts, CreateOption.applyCreate)
	req := &batchv1.CreateBatchRequest{
		Model: model, Metadata: o.metadata, CompletionWindow: o.window, User: o.user, RequestId: o.requestID,
		MaxAttempts: o.maxAttempts,
	}
	if req.RequestId == "" {
		req.RequestId = newUUID()
	}
	for _, r := range requests {
		// As JSON text (body_json): no Struct conversion on either side, and numbers kept exactly.
		body, err := json.Marshal(r.Body)
		if err != nil {
			return nil, fmt.Errorf("otari batch: body of %q: %w", r.CustomID, err)
		}
		req.Requests = append(req.Requests, &batchv1.BatchRequestItem{
			CustomId: r.CustomID, Content: &batchv1.BatchRequestItem_BodyJson{BodyJson: string(body)},
		})
	}
	for attempt := 1; ; attempt++ {
		reply, err := c.stub.CreateBatch(c.auth(ctx), req)
		if err == nil {
			return reply.GetBatch(), nil
		}
		if err = c.pauseOrFail(ctx, newError(err), attempt); err != nil {
			return nil, err
		}
	}
}

// Get returns the batch's current state.
func (c *Client) Get(ctx context.Context, batchID string, opts ...BatchOption) (*batchv1.Batch, error) {
	o := collect(opts, BatchOption.applyBatch)
	reply, err := c.stub.GetBatch(c.auth(ctx), &batchv1.GetBatchRequest{BatchId: batchID, Provider: o.provider})
	return reply.GetBatch(), newError(err)
}

// Cancel asks for the batch to be cancelled; it returns the batch, usually CANCELLING.
func (c *Client) Cancel(ctx context.Context, batchID string, opts ...BatchOption) (*batchv1.Batch, error) {
	o := collect(opts, BatchOption.applyBatch)
	reply, err := c.stub.CancelBatch(c.auth(ctx), &batchv1.CancelBatchRequest{BatchId: batchID, Provider: o.provider})
	return reply.GetBatch(), newError(err)
}

// List returns one page of your batches, newest first, and the token of the next page ("" at the end). An empty
// provider lists every provider you have batches with through this service.
func (c *Client) List(ctx context.Context, provider string, opts ...ListOption) ([]*batchv1.Batch, string, error) {
	o := collect(opts, ListOption.applyList)
	reply, err := c.stub.ListBatches(c.auth(ctx), &batchv1.ListBatchesRequest{
		Provider: provider, PageSize: o.pageSize, PageToken: o.pageToken,
	})
	if err != nil {
		return nil, "", newError(err)
	}
	return reply.GetBatches(), reply.GetNextPageToken(), nil
}

// ListAll returns every batch of yours, newest first, page after page.
func (c *Client) ListAll(ctx context.Context, provider string, opts ...ListOption) ([]*batchv1.Batch, error) {
	var all []*batchv1.Batch
	token := collect(opts, ListOption.applyList).pageToken
	for {
		page, next, err := c.List(ctx, provider, append(opts, PageToken(token))...)
		if err != nil {
			return all, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		token = next
	}
}

// Wait long-polls until the batch is terminal (done) or timeout passes (not done), and returns its latest state.
func (c *Client) Wait(ctx context.Context, batchID string, timeout time.Duration, opts ...BatchOption) (*batchv1.Batch, bool, error) {
	o := collect(opts, BatchOption.applyBatch)
	reply, err := c.stub.WaitBatch(c.auth(ctx), &batchv1.WaitBatchRequest{
		BatchId: batchID, Provider: o.provider, Timeout: durationpb.New(timeout),
	})
	if err != nil {
		return nil, false, newError(err)
	}
	return reply.GetBatch(), reply.GetDone(), nil
}

// pauseOrFail returns err unless it is UNAVAILABLE and attempts remain; then it sleeps as the error's RetryInfo
// says (or DefaultRetry, doubling) and returns nil.
func (c *Client) pauseOrFail(ctx context.Context, err error, attempt int) error {
	e, ok := AsError(err)
	if !ok || e.Code != codes.Unavailable || attempt >= c.MaxAttempts {
		return err
	}
	delay := c.DefaultRetry << (attempt - 1)
	if e.RetryDelay != nil {
		delay = *e.RetryDelay
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return err
	case <-timer.C:
		return nil
	}
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
