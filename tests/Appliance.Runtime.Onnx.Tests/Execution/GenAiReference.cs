using System.Text.Json;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>Runs onnxruntime-genai (tests/Appliance.Reference.GenAi) in its own process on a model folder.</summary>
internal static class GenAiReference
{
    public static int[][] Generate(string modelFolder, int[][] prompts, int newTokens)
    {
        var promptsFile = Path.Combine(Path.GetTempPath(), $"appliance-prompts-{Guid.NewGuid():N}.json");
        File.WriteAllText(promptsFile, JsonSerializer.Serialize(prompts));
        try
        {
            var output = GenAiReferenceTool.Run(TimeSpan.FromMinutes(3), "generate", modelFolder, promptsFile, newTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return JsonSerializer.Deserialize<int[][]>(output) ?? throw new InvalidDataException("no output");
        }
        finally
        {
            File.Delete(promptsFile);
        }
    }
}
