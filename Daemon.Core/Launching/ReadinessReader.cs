using System;
using System.Collections.Generic;
using System.Text;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>The launcher's end of the readiness pipe: reads lines until a deadline.</summary>
internal sealed class ReadinessReader(int fd) : IDisposable
{
    private readonly List<byte> _pending = new();
    private int _fd = fd;

    /// <summary>
    /// The next message, null at end of file, or kind <see cref="StageProtocol.Timeout"/> when the deadline (a
    /// <see cref="Environment.TickCount64"/> value) passed first.
    /// </summary>
    public (string Kind, string Argument)? Next(long deadline)
    {
        Span<byte> buffer = stackalloc byte[512];
        while (true)
        {
            int newline = _pending.IndexOf((byte)'\n');
            if (newline >= 0)
            {
                string line = Encoding.UTF8.GetString(_pending.GetRange(0, newline).ToArray());
                _pending.RemoveRange(0, newline + 1);
                int space = line.IndexOf(' ', StringComparison.Ordinal);
                return space < 0 ? (line, "") : (line[..space], line[(space + 1)..]);
            }

            int left = (int)Math.Max(0, deadline - Environment.TickCount64);
            if (!Posix.WaitReadable(_fd, left, out _))
            {
                return (StageProtocol.Timeout, "");
            }

            long n = Posix.Read(_fd, buffer, out _);
            if (n <= 0)
            {
                return null;
            }

            _pending.AddRange(buffer[..(int)n]);
        }
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            Posix.Close(_fd);
            _fd = -1;
        }
    }
}
