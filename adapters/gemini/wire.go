package gemini

import (
	"bytes"
	"encoding/json"
)

// The Gemini API's JSON shapes, reduced to the fields gavel reads or writes. Field names
// are the REST (proto3 JSON, lowerCamelCase) names of
// https://ai.google.dev/api/generate-content and https://ai.google.dev/api/embeddings.

// generateRequest is a GenerateContentRequest.
type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	Tools             []tool            `json:"tools,omitempty"`
	ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
}

// content is one turn: role "user" or "model" (none for systemInstruction).
type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

// part is a request part, a oneof on the wire: exactly one data field is set. An empty
// text would leave none set, so the translation never builds an empty text part.
type part struct {
	Text             string            `json:"text,omitempty"`
	InlineData       *blob             `json:"inlineData,omitempty"`
	FileData         *fileData         `json:"fileData,omitempty"`
	FunctionCall     *functionCall     `json:"functionCall,omitempty"`
	FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
	// Thought marks a thinking model's thought summary; it is not part of the answer.
	Thought bool `json:"thought,omitempty"`
	// ThoughtSignature is an opaque token Gemini 3 requires back on the first functionCall
	// part of each model turn (see dummyThoughtSignature).
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

type blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"` // base64
}

type fileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

type functionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type functionResponse struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type tool struct {
	FunctionDeclarations []functionDeclaration `json:"functionDeclarations,omitempty"`
}

type functionDeclaration struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type toolConfig struct {
	FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
}

type functionCallingConfig struct {
	Mode                 string   `json:"mode"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

type generationConfig struct {
	StopSequences    []string        `json:"stopSequences,omitempty"`
	ResponseMimeType string          `json:"responseMimeType,omitempty"`
	ResponseSchema   json.RawMessage `json:"responseSchema,omitempty"`
	CandidateCount   *int            `json:"candidateCount,omitempty"`
	MaxOutputTokens  *int            `json:"maxOutputTokens,omitempty"`
	Temperature      *float64        `json:"temperature,omitempty"`
	TopP             *float64        `json:"topP,omitempty"`
	TopK             *int            `json:"topK,omitempty"`
	Seed             *int64          `json:"seed,omitempty"`
	PresencePenalty  *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64        `json:"frequencyPenalty,omitempty"`
	ThinkingConfig   *thinkingConfig `json:"thinkingConfig,omitempty"`
}

// thinkingConfig sets a thinking model's budget in tokens (0 turns thinking off).
type thinkingConfig struct {
	ThinkingBudget *int `json:"thinkingBudget,omitempty"`
}

// generateResponse is a GenerateContentResponse, or one event of a stream of them. Error
// is not part of it: it is how a failure reported with a 2xx status or inside a stream
// looks, and decoding both at once spares a second pass over every event. Fields gavel
// does not use (safetyRatings, citationMetadata, thoughtSignature, role…) are left out so
// the decoder skips them without allocating; a stream decodes one of these per token.
type generateResponse struct {
	Candidates     []candidate     `json:"candidates"`
	PromptFeedback *promptFeedback `json:"promptFeedback"`
	UsageMetadata  usageMetadata   `json:"usageMetadata"` // all zero when absent
	ModelVersion   sameString      `json:"modelVersion"`
	ResponseID     sameString      `json:"responseId"`
	Error          json.RawMessage `json:"error"`
}

// sameString is a string that a decode leaves alone when the JSON holds the value it
// already has. A stream repeats modelVersion and responseId in every event; keeping the
// first copy saves two allocations per event.
type sameString string

// UnmarshalJSON decodes a JSON string; null leaves the value as it is, by convention.
func (s *sameString) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && string(b[1:len(b)-1]) == string(*s) &&
		bytes.IndexByte(b, '\\') < 0 {
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	*s = sameString(str)
	return nil
}

// candidate is one generated alternative. Index is omitted on the wire for candidate 0
// (proto3 JSON leaves out zero values), so 0 means "its position".
type candidate struct {
	Content struct {
		Parts []responsePart `json:"parts"`
	} `json:"content"`
	FinishReason string `json:"finishReason"`
	Index        int    `json:"index"`
}

// responsePart is a part of a generated candidate. Media, executable code and other
// part kinds are not decoded: the OpenAI message has no place for them.
type responsePart struct {
	Text         string        `json:"text"`
	Thought      bool          `json:"thought"`
	FunctionCall *functionCall `json:"functionCall"`
}

// reset empties g for reuse while keeping the candidates' and parts' backing arrays, so a
// stream decoding event after event does not reallocate them. encoding/json decodes into
// reused slice elements without zeroing them, hence the explicit clear. ModelVersion and
// ResponseID are kept for sameString to compare against; the stream reads them only from
// its first event, when they are still empty.
func (g *generateResponse) reset() {
	cands := g.Candidates[:cap(g.Candidates)]
	for i := range cands {
		parts := cands[i].Content.Parts[:cap(cands[i].Content.Parts)]
		clear(parts)
		cands[i] = candidate{}
		cands[i].Content.Parts = parts[:0]
	}
	*g = generateResponse{Candidates: cands[:0], ModelVersion: g.ModelVersion, ResponseID: g.ResponseID}
}

type promptFeedback struct {
	BlockReason string `json:"blockReason"`
}

// usageMetadata counts tokens. promptTokenCount already includes cached tokens;
// thoughtsTokenCount is counted apart from candidatesTokenCount.
type usageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
	TotalTokenCount         int `json:"totalTokenCount"`
}

// googleError is the google.rpc.Status Google APIs answer failures with:
//
//	{"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED","details":[…]}}
//
// Every field is raw so that one badly typed field does not lose the rest.
type googleError struct {
	Code    json.RawMessage   `json:"code"`
	Message json.RawMessage   `json:"message"`
	Status  json.RawMessage   `json:"status"`
	Details []json.RawMessage `json:"details"`
}

// errorDetail is the part of the typed detail messages gavel reads:
// google.rpc.RetryInfo (retryDelay) and google.rpc.ErrorInfo (reason).
type errorDetail struct {
	Type       string          `json:"@type"`
	RetryDelay json.RawMessage `json:"retryDelay"`
	Reason     json.RawMessage `json:"reason"`
}

// batchEmbedRequest is a BatchEmbedContentsRequest.
type batchEmbedRequest struct {
	Requests []embedRequest `json:"requests"`
}

type embedRequest struct {
	Model                string       `json:"model"`
	Content              embedContent `json:"content"`
	OutputDimensionality *int         `json:"outputDimensionality,omitempty"`
}

type embedContent struct {
	Parts []textPart `json:"parts"`
}

// textPart is a text-only part that keeps an empty text on the wire, so an empty input
// reaches Gemini (which answers for it) instead of becoming an invalid empty part.
type textPart struct {
	Text string `json:"text"`
}

// batchEmbedResponse is a BatchEmbedContentsResponse.
type batchEmbedResponse struct {
	Embeddings []struct {
		Values []float32 `json:"values"`
	} `json:"embeddings"`
	Error json.RawMessage `json:"error"`
}
