using System.IO;
using System.Text;
using Daemon.Interop;

namespace Daemon.Logging;

/// <summary>
/// A command's output or error stream: a close-on-exec copy of descriptor 1 or 2, made at the first
/// write (or when pinned), so that it keeps reaching the caller after the daemon points 1 and 2 at
/// its log, like Console's own streams; and closed again by <see cref="TextWriter.Dispose()"/>, so
/// that no instance keeps descriptors it no longer needs.
/// </summary>
internal sealed class CallerStream(int fd) : TextWriter
{
    private readonly object _gate = new();
    private TextWriter? _writer;
    private int _copy = -1;

    public override Encoding Encoding { get; } = new UTF8Encoding(false);

    /// <summary>Makes the copy now: 1 and 2 are about to be pointed elsewhere.</summary>
    public void Pin() => _ = Writer;

    public override void Write(char value) => Writer.Write(value);

    public override void Write(string? value) => Writer.Write(value);

    public override void WriteLine(string? value) => Writer.WriteLine(value);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_gate)
            {
                if (_copy >= 0)
                {
                    Posix.Close(_copy);
                    _copy = -1;
                }

                _writer = null;
            }
        }

        base.Dispose(disposing);
    }

    private TextWriter Writer
    {
        get
        {
            lock (_gate)
            {
                if (_writer is null)
                {
                    // EMFILE (a tiny ulimit -n): the command's one line must still reach its caller.
                    _copy = Posix.Duplicate(fd);
                    _writer = DescriptorWriter.Create(_copy >= 0 ? _copy : fd);
                }

                return _writer;
            }
        }
    }
}
