*** Comments ***
tinysplit on the 32F746G-DISCO (STM32F746NG) under Renode's stm32f746 model:
the firmware built for boards/disco_f746ng boots (clocks, UART)
and says HELLO, which carries the board name "disco-f746ng", on sysbus.usart1.
Run by tests/boards/test_renode.py when renode-test is on PATH:
    renode-test boards/disco_f746ng/renode/disco_f746ng.robot \
        --variable ELF:build/disco_f746ng/tinysplit.elf

*** Variables ***
${ELF}                        ${CURDIR}/../../../build/disco_f746ng/tinysplit.elf
${UART}                       sysbus.usart1

*** Test Cases ***
Boots And Says Hello
    Execute Command           $elf=@${ELF}
    Execute Command           $port=3467
    Execute Command           include @${CURDIR}/disco_f746ng.resc
    Create Terminal Tester    ${UART}    timeout=10
    Start Emulation
    Wait For Line On Uart     disco-f746ng    treatAsRegex=false    includeUnfinishedLine=true
