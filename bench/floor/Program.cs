// bench/floor: see Floor.csproj. Usage: floor start PIDFILE PORT | floor stop PIDFILE
// Only the happy path: this program prices start-up and shutdown, it is not a daemon to deploy.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace Floor;

internal static unsafe partial class Program
{
    private const int ORdOnly = 0, ORdWr = 2, OCreat = 0x40, ONoFollow = 0x20000, OCloExec = 0x80000;
    private const int FGetLk = 5, FSetLk = 6, FSetFd = 2, FdCloExec = 1;
    private const short FWrLck = 1;

    private static int Main(string[] args)
    {
#if FLOOR_MONO_POSIX
        // The helper loaded by its path and handed to Mono.Posix through a resolver, as Daemon.Core
        // does (the runtime's own probing would try a dozen names first), then a call that goes
        // through it, as most of Mono.Posix does.
        IntPtr helper = NativeLibrary.Load(System.IO.Path.Combine(AppContext.BaseDirectory, "libMonoPosixHelper.so"));
        NativeLibrary.SetDllImportResolver(typeof(Mono.Unix.Native.Syscall).Assembly, (name, _, _) => name == "MonoPosixHelper" ? helper : IntPtr.Zero);
        _ = Mono.Unix.Native.Syscall.fcntl(0, Mono.Unix.Native.FcntlCommand.F_GETFD);
#endif
        if (Environment.GetEnvironmentVariable("DAEMON_NET_STAGE") == "detach")
        {
            // The native stage refused the marker: never start another launcher from here.
            Say("failed: the native detach stage did not run\n");
            return 1;
        }

        if (Environment.GetEnvironmentVariable("DAEMON_NET_STAGE") == "daemon")
        {
            return Daemon(args[1], int.Parse(args[2]), int.Parse(Environment.GetEnvironmentVariable("DAEMON_NET_READY_FD")!.Split(':')[0]));
        }

        return args[0] == "start" ? Start(args) : Stop(args[1]);
    }

    /// <summary>The launcher: starts itself as the detach stage and waits for READY on a pipe.</summary>
    private static int Start(string[] args)
    {
        int* ends = stackalloc int[2];
        Check(pipe(ends), "pipe");
        Check(fcntl(ends[0], FSetFd, (void*)FdCloExec), "fcntl");
        var argv = new List<string> { Environment.ProcessPath! };
        argv.AddRange(args);
        // The marker names the pipe as FD:INODE, as Daemon.Core's launcher does: the native detach
        // stage ignores any other (the pipe's inode is in its /proc/self/fd link, "pipe:[INODE]").
        string pipeLink = new System.IO.FileInfo($"/proc/self/fd/{ends[1]}").LinkTarget!;
        string inode = pipeLink["pipe:[".Length..^1];
        var env = new List<string> { "DAEMON_NET_STAGE=detach", $"DAEMON_NET_READY_FD={ends[1]}:{inode}" };
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            env.Add($"{e.Key}={e.Value}");
        }

        Spawn(argv, env);
        _ = close(ends[1]);
        string reply = ReadAll(ends[0]);
        // The native detach stage sends "PID n" first, then the daemon "READY n".
        bool ready = reply.Contains("READY ", StringComparison.Ordinal);
        Say(ready ? "started\n" : $"failed: {reply}\n");
        return ready ? 0 : 1;
    }

    /// <summary>The daemon: locked pid file, listener, READY, then SIGTERM ends it.</summary>
    private static int Daemon(string pidFile, int port, int ready)
    {
        using var stop = new ManualResetEventSlim();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Set();
        });
#if FLOOR_LOG
        using var log = new System.IO.StreamWriter(new System.IO.FileStream(pidFile + ".log", System.IO.FileMode.Append)) { AutoFlush = true };
        Log(log, "starting");
#endif
        int fd = open(pidFile, ORdWr | OCreat | ONoFollow | OCloExec, 420);
        short* lk = stackalloc short[16];
        new Span<short>(lk, 16).Clear();
        lk[0] = FWrLck;
        Check(fd < 0 ? -1 : fcntl(fd, FSetLk, lk), "lock pid file");
        byte[] pid = Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n");
        fixed (byte* p = pid)
        {
            _ = write(fd, p, pid.Length);
        }

#if FLOOR_SOCKETS
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
        listener.Listen(512);
        System.Threading.Tasks.Task accepting = Sockets.AcceptLoop(listener);
#else
        Listen(port);
#endif
        byte[] message = Encoding.ASCII.GetBytes($"READY {Environment.ProcessId}\n");
        fixed (byte* m = message)
        {
            _ = write(ready, m, message.Length);
        }

        _ = close(ready);
#if FLOOR_LOG
        Log(log, "ready");
#endif
        stop.Wait();
#if FLOOR_SOCKETS
        listener.Dispose();
        accepting.ConfigureAwait(System.Threading.Tasks.ConfigureAwaitOptions.SuppressThrowing).GetAwaiter().GetResult();
#endif
        _ = unlink(pidFile);
#if FLOOR_LOG
        Log(log, "stopped");
#endif
        return 0;
    }

    /// <summary>stop: the lock holder named by the pid file gets SIGTERM; returns once it has exited.</summary>
    private static int Stop(string pidFile)
    {
        int fd = open(pidFile, ORdOnly | OCloExec, 0);
        if (fd < 0)
        {
            Say("not running\n");
            return 0;
        }

        int pid = int.Parse(ReadAll(fd).Trim());
        short* lk = stackalloc short[16];
        new Span<short>(lk, 16).Clear();
        lk[0] = FWrLck;
        Check(fcntl(fd, FGetLk, lk), "F_GETLK");
        int pidfd = (int)syscall(434, pid, 0);
        Check(pidfd < 0 ? -1 : (int)syscall(424, pidfd, 15, 0, 0), "signal");
        int* poll = stackalloc int[2];
        poll[0] = pidfd;
        poll[1] = 1; // POLLIN
        _ = Poll(poll, 1, 10_000);
        Say("stopped\n");
        return 0;
    }

#if !FLOOR_SOCKETS
    private static void Listen(int port)
    {
        int s = socket(2, 1 | OCloExec, 0), one = 1;
        _ = setsockopt(s, 1, 2, &one, sizeof(int));
        byte* address = stackalloc byte[16];
        new Span<byte>(address, 16).Clear();
        address[0] = 2; // AF_INET, port in network order, 127.0.0.1
        address[2] = (byte)(port >> 8);
        address[3] = (byte)port;
        address[4] = 127;
        address[7] = 1;
        Check(bind(s, address, 16) < 0 ? -1 : listen(s, 512), "listen");
    }
#endif

#if FLOOR_LOG
    private static void Log(System.IO.StreamWriter log, string line) =>
        log.Write($"{DateTimeOffset.Now:yyyy-MM-dd'T'HH:mm:ss.fffzzz} floor[{Environment.ProcessId}]: {line}\n");
#endif

    private static void Spawn(List<string> argv, List<string> env)
    {
        byte*[] a = ToC(argv), e = ToC(env);
        int pid;
        fixed (byte** pa = a)
        fixed (byte** pe = e)
        {
            Check(posix_spawn(&pid, pa[0], 0, 0, pa, pe) == 0 ? 0 : -1, "posix_spawn");
        }
    }

    private static byte*[] ToC(List<string> strings)
    {
        var result = new byte*[strings.Count + 1];
        for (int i = 0; i < strings.Count; i++)
        {
            result[i] = (byte*)Marshal.StringToCoTaskMemUTF8(strings[i]);
        }

        return result;
    }

    private static string ReadAll(int fd)
    {
        byte* buffer = stackalloc byte[256];
        int got = 0;
        while (got < 256)
        {
            nint n = read(fd, buffer + got, 256 - got);
            if (n <= 0)
            {
                break;
            }

            got += (int)n;

            // Up to the daemon's READY line: the native detach stage's "PID n" line comes first.
            if (buffer[got - 1] == '\n' && Encoding.ASCII.GetString(buffer, got).Contains("READY ", StringComparison.Ordinal))
            {
                break;
            }
        }

        return Encoding.ASCII.GetString(buffer, got);
    }

    private static void Say(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        fixed (byte* b = bytes)
        {
            _ = write(1, b, bytes.Length);
        }
    }

    private static void Check(int result, string what)
    {
        if (result < 0)
        {
            throw new InvalidOperationException($"{what} failed: {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int pipe(int* fds);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlink(string path);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, void* argument);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int socket, byte* address, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int listen(int socket, int backlog);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int socket, int level, int option, int* value, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int arg1, int arg2);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int arg1, int arg2, nint arg3, uint arg4);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(int* fds, nint count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawn(int* pid, byte* path, nint fileActions, nint attributes, byte** argv, byte** envp);
}

#if FLOOR_SOCKETS
/// <summary>The accept loop (async methods cannot live in an unsafe class).</summary>
internal static class Sockets
{
    public static async System.Threading.Tasks.Task AcceptLoop(System.Net.Sockets.Socket listener)
    {
        while (true)
        {
            using System.Net.Sockets.Socket client = await listener.AcceptAsync().ConfigureAwait(false);
        }
    }
}
#endif
