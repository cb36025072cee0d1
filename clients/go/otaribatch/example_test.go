package otaribatch_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mozilla-ai/otari-batch-grpc/clients/go/otaribatch"
)

// The README's example (README.md shows this body, with 127.0.0.1:50051 for the test's server).
func Example() {
	ctx := context.Background()
	client, err := otaribatch.Dial(serverAddr, "sim-key-alice")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	batch, err := client.Create(ctx, "openai:gpt-4o-mini", []otaribatch.Request{
		{CustomID: "q1", Body: map[string]interface{}{"messages": []interface{}{
			map[string]interface{}{"role": "user", "content": "Hi"}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	results := client.Results(ctx, batch.GetId(), otaribatch.WaitForCompletion())
	defer results.Close()
	for results.Next() {
		r := results.Result()
		fmt.Println(r.GetCustomId(), r.GetCompletion().GetChoices()[0].GetMessage().GetContent())
	}
	if e, ok := otaribatch.AsError(results.Err()); ok {
		log.Fatal(e.Code, e.Reason, e.Metadata, e.FieldViolations, e.RetryDelay)
	}
	// Output: q1 Echo: Hi
}
