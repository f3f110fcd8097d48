// Reranks through Cohere's official SDK against the appliance. Reads one JSON request from stdin:
// {"baseUrl", "token", "version": "v1" | "v2", "model", "query", "documents", "topN", "returnDocuments"};
// writes the SDK's parsed answer as JSON, or {"error": {status, body}} when the SDK raises one.
import { CohereClient, CohereClientV2, CohereError } from "cohere-ai";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const options = { token: request.token, environment: request.baseUrl, maxRetries: 0 };
try {
  const answer = request.version === "v1"
    ? await new CohereClient(options).rerank({ model: request.model, query: request.query, documents: request.documents, topN: request.topN, returnDocuments: request.returnDocuments })
    : await new CohereClientV2(options).rerank({ model: request.model, query: request.query, documents: request.documents, topN: request.topN });
  process.stdout.write(JSON.stringify(answer));
} catch (error) {
  if (error instanceof CohereError) {
    process.stdout.write(JSON.stringify({ error: { status: error.statusCode, body: error.body } }));
  } else {
    throw error;
  }
}
