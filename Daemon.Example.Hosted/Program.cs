using Daemon.Example.Hosted;
using Daemon.Hosting;
using Microsoft.Extensions.DependencyInjection;

// A Generic Host with one BackgroundService, daemonized: start, stop, status, reload, run.
// HostedDaemon's logging defaults already give one timestamped line per entry in the daemon's log.
return new HostedDaemon(builder =>
{
    builder.Services.Configure<HeartbeatOptions>(builder.Configuration.GetSection(HeartbeatOptions.Section));
    builder.Services.AddHostedService<HeartbeatService>();
}).Main(args);
