// Command ce-consumer reads udl's sanitized change events from NATS JetStream and prints one
// line per event.
//
//	ce-consumer [-durable NAME]
//
// It connects to UDL_NATS_URL (default nats://127.0.0.1:4222), reads the stream
// UDL_NATS_STREAM (default UDL_CE) from its first event up to the last one present at start,
// acknowledges each, and prints "<id> <type> <subject>". A service would keep consuming
// instead of stopping; with a durable consumer name it resumes where it left off after a
// restart. Each event is a CloudEvents 1.0 JSON document whose id is also its Nats-Msg-Id:
// the stream holds each event once.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cloudEvent is the part of a udl change event this consumer prints.
type cloudEvent struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Subject string `json:"subject"`
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func run(durable string) error {
	nc, err := nats.Connect(env("UDL_NATS_URL", nats.DefaultURL), nats.Name("udl go consumer"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := js.Stream(ctx, env("UDL_NATS_STREAM", "UDL_CE"))
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	last := stream.CachedInfo().State.LastSeq
	consumer, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:   durable,
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	var seen uint64
	for seen < last {
		// Exactly what is left, so the fetch returns as soon as it has arrived.
		batch, err := consumer.Fetch(int(min(256, last-seen)), jetstream.FetchMaxWait(30*time.Second))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		for message := range batch.Messages() {
			var event cloudEvent
			if err := json.Unmarshal(message.Data(), &event); err != nil {
				return fmt.Errorf("not a CloudEvent: %w", err)
			}
			subject := event.Subject
			if subject == "" {
				subject = "-"
			}
			fmt.Println(event.ID, event.Type, subject)
			if err := message.Ack(); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
			meta, err := message.Metadata()
			if err != nil {
				return err
			}
			seen = meta.Sequence.Stream
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
	}
	return nil
}

func main() {
	durable := flag.String("durable", "", "durable consumer name (resumes after a restart)")
	flag.Parse()
	if err := run(*durable); err != nil {
		fmt.Fprintln(os.Stderr, "ce-consumer:", err)
		os.Exit(1)
	}
}
