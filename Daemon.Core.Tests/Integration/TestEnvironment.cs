using System.Text.Json;
using Mono.Unix.Native;

namespace Daemon.Core.Tests.Integration;

/// <summary>What the fixtures need from the machine: the repository, root, installed tools, temp folders.</summary>
public static class TestEnvironment
{
    /// <summary>
    /// A python3 script that takes a whole-file lock and holds it until its standard input closes,
    /// then prints <c>locked PID</c>. Arguments: the file, <c>posix</c> (lockf) or <c>ofd</c> (an
    /// open file description lock), and <c>read</c> or <c>write</c>.
    /// </summary>
    public const string LockHolder = """
        import fcntl, os, struct, sys
        write = sys.argv[3] == "write"
        f = open(sys.argv[1], "r+" if write else "r")
        if sys.argv[2] == "ofd":
            fcntl.fcntl(f, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK if write else fcntl.F_RDLCK, 0, 0, 0, 0))
        else:
            fcntl.lockf(f, (fcntl.LOCK_EX if write else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        print("locked", os.getpid(), flush=True)
        sys.stdin.read()
        """;

    /// <summary>Every test's temp folder is below this one, so that leftovers are easy to find.</summary>
    public static string TestsFolder => Path.Combine(Path.GetTempPath(), "daemon-net-tests");

    /// <summary>The native detach stage's source, both builds of it.</summary>
    public static string DetachStageSource => Path.Combine(RepositoryRoot, "Daemon.Core", "build", "native", "detach_stage.c");

    /// <summary>The native detach stage's file name, beside a JIT program.</summary>
    public const string NativeStage = "daemon-net-stage";

    /// <summary>The folder that holds Daemon.sln, found upwards from the test assembly.</summary>
    public static string RepositoryRoot
    {
        get
        {
            string? dir = AppContext.BaseDirectory;
            while (dir is not null && !File.Exists(Path.Combine(dir, "Daemon.sln")))
            {
                dir = Path.GetDirectoryName(dir);
            }

            return dir ?? throw new InvalidOperationException("cannot find the repository root");
        }
    }

    /// <summary>Creates a new, empty temp folder for one test (or fixture): <c>LABEL-XXXXXXXX</c>.</summary>
    public static string CreateTestFolder(string label)
    {
        string folder = Path.Combine(TestsFolder, label + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>
    /// Turns the .NET runtime's diagnostics off in a process the tests start (and in whatever it
    /// starts): a runtime with diagnostics on creates clr-debug-pipe-* and dotnet-diagnostic-*
    /// files in the temp folder, and one that is killed never removes them.
    /// </summary>
    public static ProcessStartInfo WithoutDiagnostics(this ProcessStartInfo start)
    {
        start.Environment["DOTNET_EnableDiagnostics"] = "0";
        return start;
    }

    /// <summary>Ignores the test unless it runs as root.</summary>
    public static void RequireRoot()
    {
        if (Syscall.geteuid() != 0)
        {
            Assert.Ignore("needs root: changing users and pid namespaces is root's");
        }
    }

    /// <summary>
    /// Ignores the test unless a user other than root can reach <paramref name="folder"/>: every
    /// folder on its way must let others through (a clone or TMPDIR inside a 0700 home does not).
    /// </summary>
    public static void RequireReachableByOthers(string folder)
    {
        if (ClosedToOthers(folder) is { } dir)
        {
            Assert.Ignore($"another user cannot reach {folder}: {dir} is not searchable by others (set TMPDIR to a folder they can reach)");
        }
    }

    /// <summary>The first folder on the way to <paramref name="folder"/> that other users cannot search, or null.</summary>
    private static string? ClosedToOthers(string folder)
    {
        for (string? dir = Path.GetFullPath(folder); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            if (Syscall.stat(dir, out Stat stat) != 0 || (stat.st_mode & FilePermissions.S_IXOTH) == 0)
            {
                return dir;
            }
        }

        return null;
    }

    /// <summary>
    /// A copy of the framework-dependent program <paramref name="program"/> (an apphost) that
    /// another user can run, in a new 0755 folder below <paramref name="folder"/>: the apphost,
    /// its .dll, .deps.json and .runtimeconfig.json, and every assembly and native library its
    /// .deps.json names (runtimes/RID/native/libMonoPosixHelper.so among them). The original may
    /// sit where that user cannot go, in a clone below a 0700 home: the apphost then fails with
    /// "Failed to resolve full path of the current executable" (exit 133).
    /// </summary>
    public static string CopyForAnotherUser(string program, string folder)
    {
        RequireReachableByOthers(folder);
        return CopyProgram(program, folder);
    }

    /// <summary>
    /// A copy of the framework-dependent program <paramref name="program"/> as it is deployed, in
    /// a new 0755 folder below <paramref name="folder"/>: what <see cref="CopyForAnotherUser"/>
    /// lists, and the native detach stage (daemon-net-stage) when the original has one beside it.
    /// </summary>
    public static string CopyProgram(string program, string folder)
    {
        string source = Path.GetDirectoryName(program)!;
        string name = Path.GetFileName(program);
        string copy = Path.Combine(folder, "program-" + Guid.NewGuid().ToString("N")[..8]);
        var files = new List<string> { name, name + ".dll", name + ".deps.json", name + ".runtimeconfig.json" };
        var executables = new HashSet<string> { name, NativeStage };
        using (JsonDocument deps = JsonDocument.Parse(File.ReadAllText(Path.Combine(source, name + ".deps.json"))))
        {
            foreach (JsonProperty library in deps.RootElement.GetProperty("targets").EnumerateObject().SelectMany(t => t.Value.EnumerateObject()))
            {
                // "runtime" and "native" assets sit next to the program under their file name;
                // "runtimeTargets" under their path (runtimes/linux-x64/native/...).
                files.AddRange(Assets(library.Value, "runtime").Concat(Assets(library.Value, "native")).Select(Path.GetFileName)!);
                files.AddRange(Assets(library.Value, "runtimeTargets"));
            }
        }

        files.Add(NativeStage);
        foreach (string file in files.Distinct().Where(f => File.Exists(Path.Combine(source, f))))
        {
            string target = Path.Combine(copy, file);
            CreateFolderForOthers(copy, Path.GetDirectoryName(target)!);
            File.Copy(Path.Combine(source, file), target);
            FilePermissions mode = executables.Contains(file) ? FilePermissions.ACCESSPERMS & ~(FilePermissions.S_IWGRP | FilePermissions.S_IWOTH) : FilePermissions.DEFFILEMODE & ~(FilePermissions.S_IWGRP | FilePermissions.S_IWOTH);
            Assert.That(Syscall.chmod(target, mode), Is.EqualTo(0), target);
        }

        return Path.Combine(copy, name);
    }

    /// <summary>
    /// What each descriptor of this process names (its /proc/self/fd link), skipping any that
    /// another thread of the test host closes meanwhile.
    /// </summary>
    public static string[] DescriptorTargets() =>
        Directory.GetFileSystemEntries("/proc/self/fd")
            .Select(fd =>
            {
                try
                {
                    return new FileInfo(fd).LinkTarget;
                }
                catch (IOException)
                {
                    return null;
                }
            })
            .OfType<string>()
            .ToArray();

    /// <summary>
    /// A shipped unit file's text with the installed programs it names replaced by the ones under
    /// test (the web example's first: the echo example's path begins it).
    /// </summary>
    public static string WithProgramsUnderTest(string unit) => unit
        .Replace("/usr/local/bin/Daemon.Example.Web", Hosting.WebDaemonTests.WebExample, StringComparison.Ordinal)
        .Replace("/usr/local/bin/Daemon.Example", ExampleDaemon.Program, StringComparison.Ordinal)
        .Replace("/opt/daemon-template-program/daemon-template-program", ExampleDaemon.Program, StringComparison.Ordinal);

    /// <summary>Ignores the test unless <paramref name="path"/> is installed; returns it.</summary>
    public static string RequireTool(string path)
    {
        if (!File.Exists(path))
        {
            Assert.Ignore($"{path} is not installed (.ci/run installs it)");
        }

        return path;
    }

    private static IEnumerable<string> Assets(JsonElement library, string kind) =>
        library.TryGetProperty(kind, out JsonElement assets) ? assets.EnumerateObject().Select(a => a.Name).ToList() : Enumerable.Empty<string>();

    /// <summary>Creates <paramref name="folder"/> and the folders up to <paramref name="top"/>, each 0755 whatever the umask.</summary>
    private static void CreateFolderForOthers(string top, string folder)
    {
        Directory.CreateDirectory(folder);
        for (string? dir = folder; dir is not null && dir.Length >= top.Length; dir = Path.GetDirectoryName(dir))
        {
            Assert.That(Syscall.chmod(dir, FilePermissions.ACCESSPERMS & ~(FilePermissions.S_IWGRP | FilePermissions.S_IWOTH)), Is.EqualTo(0), dir);
        }
    }

    /// <summary>The status of <paramref name="path"/> itself (a symbolic link is not followed); the test fails when there is none.</summary>
    public static Stat StatOf(string path)
    {
        Assert.That(Syscall.lstat(path, out Stat stat), Is.EqualTo(0), path);
        return stat;
    }

    /// <summary>The owner's uid of <paramref name="path"/> itself.</summary>
    public static uint Owner(string path) => StatOf(path).st_uid;
}
