using System;
using System.IO;
using System.Text;
using Daemon.Interop;

namespace Daemon.Logging;

/// <summary>
/// UTF-8 text writers straight onto a descriptor, with no <see cref="Console"/> behind them.
/// The first use of System.Console on Unix starts a signal-handling thread and installs terminal
/// handlers; a <c>start</c>, <c>stop</c> or <c>status</c> that only prints one line would pay for
/// that thread's creation and, at exit, wait for it to be torn down.
/// </summary>
internal static class DescriptorWriter
{
    private static readonly Lazy<TextWriter> _standardError = new(() => OperatingSystem.IsLinux()
        ? Create(Posix.StandardError)
        : Console.Error);

    /// <summary>
    /// A synchronized, auto-flushing writer onto whatever <paramref name="fd"/> is at each write
    /// (one write(2) per line, EINTR and short writes retried, a failing write dropped, a full
    /// non-blocking one waited on for <paramref name="roomWaitMilliseconds"/>, then dropped).
    /// </summary>
    public static TextWriter Create(int fd, int roomWaitMilliseconds = 1000) =>
        TextWriter.Synchronized(new StreamWriter(new DescriptorStream(fd, roomWaitMilliseconds), new UTF8Encoding(false), 4096) { AutoFlush = true });

    /// <summary>
    /// A writer onto descriptor 2 as it is at each write, needing no descriptor of its own, unlike
    /// <see cref="Console.Error"/> (its first use dup()s 2, and fails when out of descriptors).
    /// Console's off Linux.
    /// </summary>
    public static TextWriter StandardError => _standardError.Value;

    /// <summary>A write-only stream straight onto a descriptor, with no position of its own.</summary>
    private sealed class DescriptorStream(int fd, int roomWaitMilliseconds) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        // A full disk or a closed pipe must not take the process down: the text is lost, nothing else.
        public override void Write(ReadOnlySpan<byte> buffer) => _ = fd >= 0 && Posix.WriteAll(fd, buffer, out _, roomWaitMilliseconds);

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
