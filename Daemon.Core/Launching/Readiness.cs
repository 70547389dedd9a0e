using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>
/// The readiness pipe's lines: "KIND argument\n", the kinds in <see cref="StageProtocol"/>,
/// written by the stages and read by the launcher. End of file without READY or RUNNING is a
/// failure, never success.
/// </summary>
internal static class ReadinessMessage
{
    public static byte[] Format(string kind, string argument)
    {
        // One line each: newlines inside an error message would split it.
        string flat = argument.Replace('\n', ' ').Replace('\r', ' ');
        return Encoding.UTF8.GetBytes($"{kind} {flat}\n");
    }

    public static string Format(int pid) => pid.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The daemon's end of the readiness pipe.</summary>
internal sealed class ReadinessWriter(int fd) : IDisposable
{
    private int _fd = fd;

    /// <summary>
    /// Marks the pipe close-on-exec: the daemon's own children must not hold it, or the launcher
    /// would wait for them too before it sees the end of file.
    /// </summary>
    public void KeepFromChildren() => _ = Posix.SetCloseOnExec(_fd, true);

    /// <summary>Sends a message; false when the launcher is gone (EPIPE) or the pipe is closed.</summary>
    public bool Send(string kind, string argument)
    {
        return _fd >= 0 && Posix.WriteAll(_fd, ReadinessMessage.Format(kind, argument), out _);
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

/// <summary>The launcher's end of the readiness pipe: reads lines until a deadline.</summary>
internal sealed class ReadinessReader(int fd) : IDisposable
{
    private readonly List<byte> _pending = new();
    private int _fd = fd;

    /// <summary>
    /// The next message, null at end of file, or kind "TIMEOUT" when the deadline (a
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
                return ("TIMEOUT", "");
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
