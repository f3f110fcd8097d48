using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace Appliance.Host.Batches;

/// <summary>
/// The response side of an in-process request: status, headers and a body kept in memory. It starts (running the
/// OnStarting callbacks, as a server does before the first byte goes out) at the first write or flush.
/// </summary>
internal sealed class InProcessResponse : IHttpResponseFeature, IHttpResponseBodyFeature
{
    private readonly MemoryStream _body = new();
    private readonly List<(Func<object, Task> Callback, object State)> _starting = [];
    private readonly List<(Func<object, Task> Callback, object State)> _completed = [];
    private readonly StartingStream _stream;
    private PipeWriter? _writer;

    public InProcessResponse() => _stream = new StartingStream(this);

    public int StatusCode { get; set; } = 200;

    public string? ReasonPhrase { get; set; }

    public IHeaderDictionary Headers { get; set; } = new HeaderDictionary();

    public Stream Body { get => _stream; set => throw new NotSupportedException("the in-process response keeps its own body"); }

    public bool HasStarted { get; private set; }

    public Stream Stream => _stream;

    public PipeWriter Writer => _writer ??= PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));

    public byte[] Content => _body.ToArray();

    public void OnStarting(Func<object, Task> callback, object state) => _starting.Add((callback, state));

    public void OnCompleted(Func<object, Task> callback, object state) => _completed.Add((callback, state));

    public void DisableBuffering()
    {
    }

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (HasStarted)
        {
            return;
        }

        // Registered last, run first: as the servers do.
        for (var i = _starting.Count - 1; i >= 0; i--)
        {
            await _starting[i].Callback(_starting[i].State);
        }

        HasStarted = true;
    }

    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        await StartAsync(cancellationToken);
        await using var file = File.OpenRead(path);
        file.Seek(offset, SeekOrigin.Begin);
        var buffer = new byte[count ?? (file.Length - offset)];
        await file.ReadExactlyAsync(buffer, cancellationToken);
        await _body.WriteAsync(buffer, cancellationToken);
    }

    public async Task CompleteAsync()
    {
        await StartAsync();
        if (_writer is not null)
        {
            await _writer.FlushAsync();
        }
    }

    /// <summary>After the request: the OnCompleted callbacks, last registered first.</summary>
    public async Task CompletedAsync()
    {
        for (var i = _completed.Count - 1; i >= 0; i--)
        {
            await _completed[i].Callback(_completed[i].State);
        }
    }

    /// <summary>Writes into the memory body, starting the response first; before that it can be cleared (as Response.Clear does).</summary>
    private sealed class StartingStream(InProcessResponse response) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => response._body.Length;

        public override long Position { get => response._body.Position; set => throw new NotSupportedException(); }

        public override void Flush() => response.StartAsync().GetAwaiter().GetResult();

        public override async Task FlushAsync(CancellationToken cancellationToken) => await response.StartAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            response.StartAsync().GetAwaiter().GetResult();
            response._body.Write(buffer, offset, count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await response.StartAsync(cancellationToken);
            await response._body.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
