using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Daemon.Interop;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The system calls Daemon.Core declares itself (no Mono.Posix): their constants and structure
/// layouts against this machine's C headers, and each kind of call against what the OS says.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class PosixTests
{
    private string _folder = null!;

    [SetUp]
    public void SetUp() => _folder = TestEnvironment.CreateTestFolder("posix");

    [TearDown]
    public void TearDown() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void ConstantsAndLayouts_AreWhatThisMachinesCCompilerSays()
    {
        string gcc = TestEnvironment.RequireTool("/usr/bin/gcc");
        List<(string C, long Managed)> checks = ConstantsAndLayouts();
        var program = new StringBuilder("""
            #define _GNU_SOURCE
            #include <errno.h>
            #include <fcntl.h>
            #include <poll.h>
            #include <signal.h>
            #include <stddef.h>
            #include <stdio.h>
            #include <sys/resource.h>
            #include <sys/socket.h>
            #include <sys/stat.h>
            #include <sys/syscall.h>
            #include <sys/sysmacros.h>
            #include <sys/uio.h>
            #include <sys/un.h>
            #include <unistd.h>
            int main(void)
            {

            """);
        foreach ((string c, _) in checks)
        {
            program.Append(CultureInfo.InvariantCulture, $"    printf(\"%lld\\n\", (long long)({c}));\n");
        }

        program.Append("    return 0;\n}\n");
        string source = Path.Combine(_folder, "values.c");
        string binary = Path.Combine(_folder, "values");
        File.WriteAllText(source, program.ToString());
        CommandResult compiled = Run(gcc, "-Wall", "-Werror", "-o", binary, source);
        Assert.That(compiled.ExitCode, Is.EqualTo(0), compiled.ToString());

        string[] said = Run(binary).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(said, Has.Length.EqualTo(checks.Count));
        string[] wrong = checks.Zip(said)
            .Where(p => long.Parse(p.Second, CultureInfo.InvariantCulture) != p.First.Managed)
            .Select(p => $"{p.First.C}: C says {p.Second}, Daemon.Core has {p.First.Managed}")
            .ToArray();
        Assert.That(wrong, Is.Empty, string.Join("\n", wrong));
        Assert.That(checks.Select(c => c.C), Does.Contain("O_NOFOLLOW").And.Contain("sizeof(struct statx)").And.Contain("offsetof(struct msghdr, msg_control)"), "the table covers what differs between architectures");
    }

    [TestCase(Architecture.X64, 0x20000)]
    [TestCase(Architecture.Arm64, 0x8000)]
    public void NoFollow_HasEachArchitecturesValue(Architecture architecture, int expected)
    {
        // From the kernel's include/uapi/asm-generic/fcntl.h and arch/arm64/include/uapi/asm/fcntl.h.
        Assert.That((int)Posix.NoFollowOn(architecture), Is.EqualTo(expected));
    }

    [Test]
    public void Fstat_AndLstat_AgreeWithStat()
    {
        string file = Path.Combine(_folder, "file");
        File.WriteAllText(file, "x");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.SetGroup);
        File.CreateSymbolicLink(Path.Combine(_folder, "link"), file);
        Assert.That(Run("/bin/ln", file, Path.Combine(_folder, "twin")).ExitCode, Is.EqualTo(0), "a second hard link");
        Assert.That(Run("/usr/bin/mkfifo", Path.Combine(_folder, "fifo")).ExitCode, Is.EqualTo(0));
        if (Posix.GetEffectiveUid() == 0)
        {
            // Owner and group that are not 0, so that a field read at the wrong place shows.
            Assert.That(Run("/bin/chown", "65534:65534", file).ExitCode, Is.EqualTo(0));
        }

        foreach (string name in new[] { "file", "link", "fifo", "." })
        {
            string path = Path.Combine(_folder, name);
            Assert.That(Posix.Lstat(path, out FileStatus status, out int errno), Is.EqualTo(0), $"lstat {name}: errno {errno}");
            Assert.That(Describe(status), Is.EqualTo(Stat(path, follow: false)), "lstat " + name);
        }

        foreach (string path in new[] { Path.Combine(_folder, "link"), "/dev/null", _folder })
        {
            int fd = Posix.Open(path, OpenFlags.O_RDONLY | OpenFlags.O_CLOEXEC, 0, out int errno);
            Assert.That(fd, Is.GreaterThanOrEqualTo(0), $"open {path}: errno {errno}");
            try
            {
                Assert.That(Posix.Fstat(fd, out FileStatus status, out errno), Is.EqualTo(0), $"fstat {path}: errno {errno}");
                Assert.That(Describe(status), Is.EqualTo(Stat(path, follow: true)), "fstat " + path);
            }
            finally
            {
                Posix.Close(fd);
            }
        }

        Assert.That(Posix.Lstat(file, out FileStatus regular, out _), Is.EqualTo(0));
        Assert.Multiple(() =>
        {
            Assert.That(regular.Type, Is.EqualTo(FileType.RegularFile));
            Assert.That(regular.Links, Is.EqualTo(2u));
            Assert.That((UnixFileMode)(regular.Mode & 0xFFF), Is.EqualTo(File.GetUnixFileMode(file)));
            Assert.That(Posix.Lstat(Path.Combine(_folder, "link"), out FileStatus link, out _) == 0 && link.Type == FileType.SymbolicLink, Is.True);
            Assert.That(Posix.Lstat(Path.Combine(_folder, "twin"), out FileStatus twin, out _) == 0 && twin.IsSameFile(regular), Is.True, "a hard link is the same file");
            Assert.That(Posix.Lstat(Path.Combine(_folder, "missing"), out _, out int errno), Is.EqualTo(-1));
            Assert.That(errno, Is.EqualTo(Errno.ENOENT));
        });
    }

    [Test]
    public void Open_WithNoFollow_RefusesASymbolicLink_AndOpensTheFile()
    {
        string file = Path.Combine(_folder, "file");
        string link = Path.Combine(_folder, "link");
        File.WriteAllText(file, "x");
        File.CreateSymbolicLink(link, file);
        OpenFlags flags = OpenFlags.O_RDONLY | OpenFlags.O_CLOEXEC | Posix.O_NOFOLLOW;

        Assert.That(Posix.Open(link, flags, 0, out int errno), Is.EqualTo(-1));
        Assert.That(errno, Is.EqualTo(Errno.ELOOP));
        int fd = Posix.Open(file, flags, 0, out errno);
        Assert.That(fd, Is.GreaterThanOrEqualTo(0), $"errno {errno}");
        Posix.Close(fd);
    }

    [Test]
    public void SendWithDescriptors_PassesTwoDescriptors_WhichArriveCloseOnExec()
    {
        string path = Path.Combine(_folder, "control.sock");
        int listenerFd = Posix.BindUnixSocket(path, out int errno);
        Assert.That(listenerFd, Is.GreaterThanOrEqualTo(0), $"errno {errno}");
        using var listener = new Socket(new SafeSocketHandle(listenerFd, ownsHandle: true));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(path));
        using Socket server = listener.Accept();

        int[] sent = [OpenNew("a"), OpenNew("b")];
        var received = new List<int>();
        try
        {
            Assert.That(Posix.SendWithDescriptors((int)client.Handle, "take these"u8.ToArray(), sent, out errno), Is.EqualTo(10), $"errno {errno}");
            Assert.That(Posix.SendWithDescriptors((int)client.Handle, "and no more"u8.ToArray(), [], out errno), Is.EqualTo(11), $"errno {errno}");

            byte[] buffer = new byte[64];
            long n = Posix.ReceiveWithDescriptors((int)server.Handle, buffer, 4, out int[] fds, out errno);
            received.AddRange(fds);
            Assert.That(n, Is.EqualTo(10), $"errno {errno}");
            Assert.That(Encoding.ASCII.GetString(buffer, 0, 10), Is.EqualTo("take these"));
            Assert.That(fds, Has.Length.EqualTo(2));
            for (int i = 0; i < 2; i++)
            {
                Assert.That(fds[i], Is.Not.EqualTo(sent[i]), "a descriptor of the receiver's own");
                Assert.That(Posix.Fstat(fds[i], out FileStatus got, out _) == 0 && Posix.Fstat(sent[i], out FileStatus original, out _) == 0 && got.IsSameFile(original), Is.True, "the same open file, in order");
                Assert.That(IsCloseOnExec(fds[i]), Is.True, "MSG_CMSG_CLOEXEC");
            }

            n = Posix.ReceiveWithDescriptors((int)server.Handle, buffer, 4, out fds, out errno);
            received.AddRange(fds);
            Assert.That(n, Is.EqualTo(11), $"errno {errno}");
            Assert.That(fds, Is.Empty);

            Assert.That(Posix.PeerCredentials((int)server.Handle, out int pid, out uint uid, out errno), Is.EqualTo(0), $"errno {errno}");
            Assert.That((pid, uid), Is.EqualTo((Environment.ProcessId, Posix.GetEffectiveUid())), "SO_PEERCRED names this process");
        }
        finally
        {
            sent.Concat(received).ToList().ForEach(Posix.Close);
        }
    }

    [TestCase("posix")]
    [TestCase("ofd")]
    public void GetLock_NamesTheHolder_AndSetLockSaysItIsHeld(string kind)
    {
        string python = TestEnvironment.RequireTool("/usr/bin/python3");
        string path = Path.Combine(_folder, "locked");
        File.WriteAllText(path, "1\n");
        var start = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in new[] { "-c", TestEnvironment.LockHolder, path, kind, "write" })
        {
            start.ArgumentList.Add(arg);
        }

        using Process holder = Process.Start(start)!;
        int fd = Posix.Open(path, OpenFlags.O_RDWR | OpenFlags.O_CLOEXEC, 0, out int errno);
        try
        {
            Assert.That(holder.StandardOutput.ReadLine(), Is.EqualTo($"locked {holder.Id}"));
            Assert.That(fd, Is.GreaterThanOrEqualTo(0), $"errno {errno}");
            Assert.That(Posix.GetLock(fd, out LockType type, out int pid, out errno), Is.EqualTo(0), $"errno {errno}");
            Assert.That((type, pid), Is.EqualTo((LockType.F_WRLCK, kind == "ofd" ? -1 : holder.Id)), "an OFD lock names no process");
            Assert.That(Posix.SetLock(fd, LockType.F_WRLCK, out errno), Is.EqualTo(-1));
            Assert.That(errno, Is.AnyOf(Errno.EAGAIN, Errno.EACCES));

            holder.StandardInput.Close();
            Assert.That(holder.WaitForExit(10_000), Is.True, "the holder exits once its input closes");
            Assert.That(Posix.GetLock(fd, out type, out pid, out _), Is.EqualTo(0));
            Assert.That((type, pid), Is.EqualTo((LockType.F_UNLCK, 0)));
            Assert.That(Posix.SetLock(fd, LockType.F_WRLCK, out errno), Is.EqualTo(0), $"errno {errno}");
        }
        finally
        {
            Posix.Close(fd);
            if (!holder.HasExited)
            {
                holder.Kill();
            }
        }
    }

    /// <summary>
    /// Every C-named constant of Posix (F_GETLK, SYS_pidfd_open...), of Errno, OpenFlags and
    /// LockType, the file types, and the size and field offsets of every structure Posix lays out.
    /// </summary>
    private static List<(string C, long Managed)> ConstantsAndLayouts()
    {
        var checks = new List<(string, long)>();
        foreach (FieldInfo field in typeof(Posix).GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
        {
            if (Regex.IsMatch(field.Name, "^[A-Z]+_[A-Za-z_]+$") && (field.IsLiteral || field.IsInitOnly))
            {
                checks.Add((field.Name, Convert.ToInt64(field.GetValue(null), CultureInfo.InvariantCulture)));
            }
        }

        checks.AddRange(typeof(Errno).GetFields().Select(f => (f.Name, Convert.ToInt64(f.GetValue(null), CultureInfo.InvariantCulture))));
        checks.AddRange(typeof(Signal).GetFields().Select(f => (f.Name, Convert.ToInt64(f.GetValue(null), CultureInfo.InvariantCulture))));
        checks.AddRange(Enum.GetValues<OpenFlags>().Select(v => (v.ToString(), (long)v)));
        checks.AddRange(Enum.GetValues<LockType>().Select(v => (v.ToString(), (long)v)));
        checks.AddRange(new (string, FileType)[]
        {
            ("S_IFIFO", FileType.Fifo), ("S_IFCHR", FileType.CharacterDevice), ("S_IFDIR", FileType.Directory), ("S_IFBLK", FileType.BlockDevice),
            ("S_IFREG", FileType.RegularFile), ("S_IFLNK", FileType.SymbolicLink), ("S_IFSOCK", FileType.Socket),
        }.Select(t => (t.Item1, (long)t.Item2)));

        Layout<Posix.Flock>("struct flock");
        Layout<Posix.StatxBuffer>("struct statx");
        Layout<Posix.MsgHdr>("struct msghdr");
        Layout<Posix.IoVec>("struct iovec");
        Layout<Posix.CmsgHdr>("struct cmsghdr");
        Layout<Posix.UCred>("struct ucred");
        Layout<Posix.SockaddrUn>("struct sockaddr_un");
        Layout<Posix.PollFd>("struct pollfd");
        foreach (int payload in new[] { 4, 8, 12, 256 })
        {
            checks.Add(($"CMSG_SPACE({payload})", Posix.ControlSpace(payload)));
        }

        checks.Add(("CMSG_LEN(12) - 12", Marshal.SizeOf<Posix.CmsgHdr>()));
        checks.Add(("makedev(8u, 1u)", (long)Posix.DeviceNumber(8, 1)));
        checks.Add(("makedev(0x12345u, 0xabcdefu)", (long)Posix.DeviceNumber(0x12345, 0xabcdef)));
        return checks;

        void Layout<T>(string c)
            where T : struct
        {
            checks.Add(($"sizeof({c})", Marshal.SizeOf<T>()));
            foreach (FieldInfo field in typeof(T).GetFields(BindingFlags.Instance | BindingFlags.Public))
            {
                checks.Add(($"offsetof({c}, {field.Name})", (long)Marshal.OffsetOf<T>(field.Name)));
            }
        }
    }

    private int OpenNew(string name)
    {
        int fd = Posix.Open(Path.Combine(_folder, name), OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_CLOEXEC, 0b110_000_000, out int errno);
        Assert.That(fd, Is.GreaterThanOrEqualTo(0), $"errno {errno}");
        return fd;
    }

    // The "flags:" line of /proc/self/fdinfo is octal; O_CLOEXEC is 02000000 there.
    private static bool IsCloseOnExec(int fd) =>
        (Convert.ToInt64(File.ReadAllLines($"/proc/self/fdinfo/{fd}").Single(l => l.StartsWith("flags:", StringComparison.Ordinal))[6..].Trim(), 8) & 0x80000) != 0;

    private static string Describe(FileStatus s) =>
        string.Create(CultureInfo.InvariantCulture, $"{s.Device} {s.Inode} {s.Mode:x} {s.Links} {s.Uid} {s.Gid}");

    private static string Stat(string path, bool follow)
    {
        CommandResult result = follow ? Run("/usr/bin/stat", "-L", "-c", "%d %i %f %h %u %g", path) : Run("/usr/bin/stat", "-c", "%d %i %f %h %u %g", path);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        return result.Output.Trim();
    }

    private static CommandResult Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.That(process.WaitForExit(60_000), Is.True, program + " finished");
        return new CommandResult(process.ExitCode, output, error.Result);
    }
}
