REM SikkerKey sync agent for secret sk_abc123 as a Windows service, with NSSM (https://nssm.cc).
REM Run from an elevated prompt. Remove with `sikkerkey-agent uninstall --secret sk_abc123`.
nssm install SikkerKeyAgent_sk_abc123 /usr/local/bin/sikkerkey-agent start --secret sk_abc123
nssm set SikkerKeyAgent_sk_abc123 DisplayName "SikkerKey Agent (sk_abc123)"
nssm set SikkerKeyAgent_sk_abc123 Description "SikkerKey sync agent for secret sk_abc123"
nssm set SikkerKeyAgent_sk_abc123 Start SERVICE_AUTO_START
nssm set SikkerKeyAgent_sk_abc123 AppEnvironmentExtra SIKKERKEY_HOME=/home/ann/.sikkerkey
nssm set SikkerKeyAgent_sk_abc123 AppStdout /home/ann/.sikkerkey/agents/sk_abc123.log
nssm set SikkerKeyAgent_sk_abc123 AppStderr /home/ann/.sikkerkey/agents/sk_abc123.log
nssm set SikkerKeyAgent_sk_abc123 AppExit Default Restart
nssm set SikkerKeyAgent_sk_abc123 AppExit 2 Exit
nssm set SikkerKeyAgent_sk_abc123 AppExit 3 Exit
nssm set SikkerKeyAgent_sk_abc123 AppExit 4 Exit
nssm set SikkerKeyAgent_sk_abc123 AppExit 5 Exit
nssm set SikkerKeyAgent_sk_abc123 AppRestartDelay 10000
nssm start SikkerKeyAgent_sk_abc123

REM Without NSSM, with sc.exe (elevated prompt). sc.exe expects a program that speaks the
REM Windows service protocol and stops one that does not after about 30 s, so prefer NSSM.
sc.exe create SikkerKeyAgent_sk_abc123 binPath= "/usr/local/bin/sikkerkey-agent start --secret sk_abc123" start= auto DisplayName= "SikkerKey Agent (sk_abc123)"
sc.exe description SikkerKeyAgent_sk_abc123 "SikkerKey sync agent for secret sk_abc123"
sc.exe failure SikkerKeyAgent_sk_abc123 reset= 86400 actions= restart/10000/restart/10000/restart/10000
reg.exe add HKLM\SYSTEM\CurrentControlSet\Services\SikkerKeyAgent_sk_abc123 /v Environment /t REG_MULTI_SZ /d SIKKERKEY_HOME=/home/ann/.sikkerkey /f
sc.exe start SikkerKeyAgent_sk_abc123
