namespace Appliance.Runtime.Onnx.Models;

/// <summary>A model folder cannot be used; the message names the file (and key) at fault.</summary>
public sealed class ModelFolderException(string message, Exception? inner = null) : Exception(message, inner);
