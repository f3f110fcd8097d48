using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.OnnxFormat;

namespace Appliance.Runtime.Onnx.Tokenization.SentencePiece;

/// <summary>A piece's kind, as sentencepiece_model.proto numbers them.</summary>
public enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>How the model splits text into pieces (trainer_spec.model_type).</summary>
public enum SentencePieceAlgorithm
{
    Unigram = 1,
    Bpe = 2,
    Word = 3,
    Character = 4,
}

/// <summary>One vocabulary entry: its text ("▁" for a space), score and kind.</summary>
public readonly record struct Piece(string Text, float Score, PieceType Type);

/// <summary>
/// What encoding needs from a SentencePiece tokenizer.model (a serialized ModelProto): the pieces, the algorithm,
/// byte fallback and the normalizer's whitespace rules. Read with the protobuf field numbers of
/// sentencepiece_model.proto; fields this tokenizer does not use are skipped.
/// </summary>
public sealed class SentencePieceModel
{
    public required IReadOnlyList<Piece> Pieces { get; init; }

    public SentencePieceAlgorithm Algorithm { get; init; } = SentencePieceAlgorithm.Unigram;

    public bool ByteFallback { get; init; }

    /// <summary>The beginning-of-sentence id (trainer_spec.bos_id); negative when the model has none.</summary>
    public int BeginningOfSentenceId { get; init; } = 1;

    public string NormalizerName { get; init; } = string.Empty;

    /// <summary>A compiled character map (nmt_nfkc and other non-identity normalizers); empty for identity.</summary>
    public int PrecompiledCharsMapLength { get; init; }

    public bool AddDummyPrefix { get; init; } = true;

    public bool RemoveExtraWhitespaces { get; init; } = true;

    public bool EscapeWhitespaces { get; init; } = true;

    public static SentencePieceModel Read(string path)
    {
        try
        {
            using var stream = new MemoryStream(File.ReadAllBytes(path), writable: false);
            return Parse(stream);
        }
        catch (InvalidDataException exception)
        {
            throw new ModelFolderException($"{path}: not a SentencePiece model ({exception.Message})", exception);
        }
        catch (EndOfStreamException exception)
        {
            throw new ModelFolderException($"{path}: not a SentencePiece model (the file ends inside a field)", exception);
        }
    }

    private static SentencePieceModel Parse(Stream stream)
    {
        var reader = new ProtoReader(stream);
        var pieces = new List<Piece>();
        var algorithm = SentencePieceAlgorithm.Unigram;
        var byteFallback = false;
        var bos = 1;
        var normalizer = (Name: string.Empty, CharsMap: 0, DummyPrefix: true, RemoveExtra: true, Escape: true);
        while (reader.NextField(stream.Length) is { } field)
        {
            switch (field.Number)
            {
                case 1 when field.IsLengthDelimited:
                    pieces.Add(ReadPiece(reader, stream));
                    break;
                case 2 when field.IsLengthDelimited:
                    (algorithm, byteFallback, bos) = ReadTrainerSpec(reader, stream);
                    break;
                case 3 when field.IsLengthDelimited:
                    normalizer = ReadNormalizerSpec(reader, stream);
                    break;
                default:
                    reader.Skip(field);
                    break;
            }
        }

        if (pieces.Count == 0)
        {
            throw new InvalidDataException("it has no pieces");
        }

        return new SentencePieceModel
        {
            Pieces = pieces,
            Algorithm = algorithm,
            ByteFallback = byteFallback,
            BeginningOfSentenceId = bos < pieces.Count ? bos : -1,
            NormalizerName = normalizer.Name,
            PrecompiledCharsMapLength = normalizer.CharsMap,
            AddDummyPrefix = normalizer.DummyPrefix,
            RemoveExtraWhitespaces = normalizer.RemoveExtra,
            EscapeWhitespaces = normalizer.Escape,
        };
    }

    private static Piece ReadPiece(ProtoReader reader, Stream stream)
    {
        var end = reader.ReadLength() + stream.Position;
        var (text, score, type) = (string.Empty, 0f, PieceType.Normal);
        while (reader.NextField(end) is { } field)
        {
            switch (field.Number)
            {
                case 1 when field.IsLengthDelimited:
                    text = reader.ReadString();
                    break;
                case 2 when field.WireType == 5:
                    score = reader.ReadSingle();
                    break;
                case 3 when field.WireType == 0:
                    var value = (int)reader.ReadVarint();
                    type = Enum.IsDefined((PieceType)value) ? (PieceType)value : throw new InvalidDataException($"piece '{text}' has unknown type {value}");
                    break;
                default:
                    reader.Skip(field);
                    break;
            }
        }

        return new Piece(text, score, type);
    }

    private static (SentencePieceAlgorithm Algorithm, bool ByteFallback, int Bos) ReadTrainerSpec(ProtoReader reader, Stream stream)
    {
        var end = reader.ReadLength() + stream.Position;
        var (algorithm, byteFallback, bos) = (SentencePieceAlgorithm.Unigram, false, 1);
        while (reader.NextField(end) is { } field)
        {
            switch (field.Number)
            {
                case 3 when field.WireType == 0:
                    algorithm = (SentencePieceAlgorithm)(int)reader.ReadVarint();
                    break;
                case 35 when field.WireType == 0:
                    byteFallback = reader.ReadVarint() != 0;
                    break;
                case 41 when field.WireType == 0:
                    bos = (int)(long)reader.ReadVarint(); // int32 -1 is written as a 10-byte varint
                    break;
                default:
                    reader.Skip(field);
                    break;
            }
        }

        return (algorithm, byteFallback, bos);
    }

    private static (string Name, int CharsMap, bool DummyPrefix, bool RemoveExtra, bool Escape) ReadNormalizerSpec(ProtoReader reader, Stream stream)
    {
        var end = reader.ReadLength() + stream.Position;
        var spec = (Name: string.Empty, CharsMap: 0, DummyPrefix: true, RemoveExtra: true, Escape: true);
        while (reader.NextField(end) is { } field)
        {
            switch (field.Number)
            {
                case 1 when field.IsLengthDelimited:
                    spec.Name = reader.ReadString();
                    break;
                case 2 when field.IsLengthDelimited:
                    spec.CharsMap = reader.ReadBytes().Length;
                    break;
                case 3 when field.WireType == 0:
                    spec.DummyPrefix = reader.ReadVarint() != 0;
                    break;
                case 4 when field.WireType == 0:
                    spec.RemoveExtra = reader.ReadVarint() != 0;
                    break;
                case 5 when field.WireType == 0:
                    spec.Escape = reader.ReadVarint() != 0;
                    break;
                default:
                    reader.Skip(field);
                    break;
            }
        }

        return spec;
    }
}
