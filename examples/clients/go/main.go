// A Go service using udl through its gateway: a clinician lists a patient's conversations
// under the patient's consent, reads one, searches document chunks, tracks a usage event, and
// is refused what the policy does not allow. Run against a real `udl serve` by the examples'
// test (crates/udl-cli/tests/integration/gateway_clients.rs) after the Python journey wrote
// the data; every value is fake.
//
// Environment: UDL_GATEWAY_URL, UDL_SERVICE_TOKEN, UDL_PATIENT_ID, UDL_CLINICIAN_TOKEN,
// UDL_STRANGER_TOKEN.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	udl "udl.example/client"
)

// Conversation is the part of the conversations entity this service uses.
type Conversation struct {
	ID        string `json:"id"`
	PatientID string `json:"patient_id"`
	Title     string `json:"title"`
	Status    string `json:"status"`
	Version   int64  `json:"version"`
	Messages  []struct {
		Role string `json:"role"`
		Text string `json:"text"`
	} `json:"messages"`
}

// Chunk is the part of document_chunks retrieval needs.
type Chunk struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

func main() {
	ctx := context.Background()
	env := os.Getenv
	client := udl.New(env("UDL_GATEWAY_URL"), env("UDL_SERVICE_TOKEN"))
	patient := env("UDL_PATIENT_ID")
	treating := udl.Caller{Token: env("UDL_CLINICIAN_TOKEN"), Purpose: "treatment", Patient: patient}

	filter := map[string]any{"patient_id": map[string]any{"eq": patient}}
	page, err := udl.List[Conversation](ctx, client, treating, "conversations", udl.Query{Filter: filter, Sort: []string{"-started_at"}, Limit: 10})
	if err != nil || len(page.Items) == 0 {
		log.Fatalf("list: %v (%d items)", err, len(page.Items))
	}
	fmt.Printf("conversations of the patient: %d\n", len(page.Items))
	note, found, err := udl.Get[Conversation](ctx, client, treating, "conversations", page.Items[0].ID)
	if err != nil || !found {
		log.Fatalf("get: %v", err)
	}
	fmt.Printf("read %q (status %s, version %d), %d message(s)\n", note.Title, note.Status, note.Version, len(note.Messages))

	count, err := client.Count(ctx, treating, "conversations", filter)
	if err != nil || count != int64(len(page.Items)) {
		log.Fatalf("count: %v (%d)", err, count)
	}

	chunks, err := udl.Nearest[Chunk](ctx, client, udl.Caller{Token: env("UDL_CLINICIAN_TOKEN"), Purpose: "treatment", Patient: patient},
		"document_chunks", "embedding", []float32{0.1, 1.0, 0.0}, 1, map[string]any{"content_type": map[string]any{"eq": "playbook"}})
	if err != nil || len(chunks) != 1 || chunks[0].Record.Text != "fake coping tip 1" {
		log.Fatalf("nearest: %v %+v", err, chunks)
	}
	fmt.Printf("retrieved %q (score %.2f)\n", chunks[0].Record.Text, chunks[0].Score)

	event := map[string]any{"at": time.Now().UTC().Format(time.RFC3339), "attributes": map[string]string{"screen": "fake-dashboard"}}
	if err := client.Track(ctx, treating, "fake_clinician_views", []map[string]any{event}); err != nil {
		log.Fatalf("track: %v", err)
	}

	stranger := udl.Caller{Token: env("UDL_STRANGER_TOKEN"), Purpose: "treatment", Patient: patient}
	_, _, err = udl.Get[Conversation](ctx, client, stranger, "conversations", note.ID)
	var refusal *udl.Error
	if !errors.As(err, &refusal) || refusal.Status != 403 {
		log.Fatalf("a stranger was not refused: %v", err)
	}
	fmt.Printf("stranger refused: %d %s\n", refusal.Status, refusal.Kind)
	fmt.Println("go journey done")
}
